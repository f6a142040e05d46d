"""Small builders of request bodies."""

from typing import Any

COMPANY = "TransNordRail"
CEO = "CamilleDurand_CEO"


def mention(external_id: str, text: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": "api",
        "external_id": external_id,
        "account": COMPANY,
        "author": {"handle": "rider"},
        "text": text,
    }
    body.update(overrides)
    return body


DELAY_FR = "Mon RER B est bloqué depuis 40 minutes à Châtelet, des infos ?"
DELAY_EN = "@TransNordRail train 8812 stuck outside Leeds for 50 minutes now, no announcement at all. What is going on?"
PROBLEM_EN = "@TransNordRail I was charged twice for my season ticket and nobody answers the phone. Please refund me."
PRAISE_EN = (
    "@TransNordRail huge thanks to the conductor on the 7:40 this morning, so kind and helpful!"
)
PRESS_EN = "@TransNordRail Hi, journalist at the Daily Courier here, could your press office comment on today's strike? Deadline 5pm."
