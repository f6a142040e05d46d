"""API shape of a classification."""

from pydantic import BaseModel, ConfigDict


class ClassificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    label: str
    probability: float
    probabilities: dict[str, float]
    model_version: str
    triage: bool
