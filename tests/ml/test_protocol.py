"""The in-domain protocols: honest airline labels, and binary complaint detection."""

from pathlib import Path

import pytest

from ml.dataset import Example
from ml.protocol import airline_history, binary, derived_airline_label


@pytest.mark.parametrize(
    ("sentiment", "reason", "label"),
    [
        ("negative", "Late Flight", "delay"),
        ("negative", "Cancelled Flight", "delay"),
        ("negative", "Lost Luggage", "problem"),
        ("negative", "Customer Service Issue", "problem"),
        ("negative", "Can't Tell", None),
        ("positive", "", "praise"),
        ("neutral", "", None),
    ],
)
def test_derived_airline_labels(sentiment: str, reason: str, label: str | None) -> None:
    assert derived_airline_label(sentiment, reason) == label


def test_the_annotated_posts_never_train(tmp_path: Path) -> None:
    tweets = tmp_path / "tweets.csv"
    tweets.write_text(
        "tweet_id,airline,airline_sentiment,negativereason,tweet_created,text\n"
        "1,X,negative,Late Flight,2015-02-24,late again\n"
        "2,X,positive,,2015-02-24,lovely crew\n"
        "3,X,neutral,,2015-02-24,what gate?\n"
    )

    assert airline_history(tweets, exclude_ids={"2"}) == [Example("late again", "delay", "en")]


def test_binary_complaint_detection_learns_a_separable_task() -> None:
    complaints = [f"my bag is lost again, flight {i}, nobody helps" for i in range(20)]
    others = [f"lovely views from seat {i}, great crew" for i in range(20)]
    examples = [Example(t, "1") for t in complaints] + [Example(t, "0") for t in others]

    result = binary(examples, positive="1", folds=5)

    assert result["f1_positive"] == 1.0
    assert (result["examples"], result["positives"], result["folds"]) == (40, 20, 5)
