"""Model versions: register trained artifacts, activate one (audited), find the active one.

The active version is a row, so every process of the service can see a switch: the one that
activates swaps its model at once, the others within `model_refresh_seconds`.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.classify.models import ModelActivation, ModelVersion
from app.config import PACKAGED_MODEL_PATH
from app.db import one_at_a_time, utcnow
from app.errors import InvalidModel, NotFound
from ml.model import ModelError, TextClassifier

BUILTIN = "builtin"
# An arbitrary constant naming the advisory lock of registrations and activations.
MODEL_CHANGE_LOCK = 0x41_69_67_4D  # "AigM"


def location(path: str) -> Path:
    """Where a registered version's files are; the packaged model moves with the package."""
    return PACKAGED_MODEL_PATH if path == BUILTIN else Path(path)


def stored_path(directory: Path) -> str:
    return BUILTIN if directory.resolve() == PACKAGED_MODEL_PATH.resolve() else str(directory)


def register(*, session: Session, model: TextClassifier, directory: Path) -> ModelVersion:
    """Record a trained model (inactive); registering the same version again changes nothing."""
    lock_changes(session=session)
    row = session.scalars(select(ModelVersion).where(ModelVersion.version == model.version)).first()
    if row is not None:
        return row
    metadata: dict[str, Any] = model.metadata
    row = ModelVersion(
        version=model.version,
        path=stored_path(directory),
        details=metadata,
        metrics=metadata.get("metrics") or {},
        active=False,
    )
    session.add(row)
    session.flush()
    return row


def lock_changes(*, session: Session) -> None:
    """Registrations and activations one transaction at a time: two processes starting on a new
    database would both register the model (one failing on the unique version), and two
    activations at once could leave two versions active."""
    one_at_a_time(session, MODEL_CHANGE_LOCK)


def list_versions(*, session: Session) -> Sequence[ModelVersion]:
    return session.scalars(select(ModelVersion).order_by(ModelVersion.created_at.desc())).all()


def get(*, session: Session, version: str) -> ModelVersion:
    row = session.scalars(select(ModelVersion).where(ModelVersion.version == version)).first()
    if row is None:
        raise NotFound(f"no model version {version!r}", details={"version": version})
    return row


def active(*, session: Session) -> ModelVersion | None:
    return session.scalars(select(ModelVersion).where(ModelVersion.active)).first()


def load(row: ModelVersion) -> TextClassifier:
    """The version's artifact, checked to be the version the row names; 422 if it is not."""
    directory = location(row.path)
    try:
        model = TextClassifier.load(directory)
    except ModelError as error:
        raise InvalidModel(
            f"model {row.version} cannot be loaded: {error}",
            details={"version": row.version, "path": str(directory)},
        ) from error
    if model.version != row.version:
        raise InvalidModel(
            f"{directory} holds model {model.version}, not {row.version}",
            details={"version": row.version, "found": model.version},
        )
    return model


def activate(*, session: Session, row: ModelVersion, actor: str) -> ModelActivation | None:
    """Make the version the active one, audited; None if it was the active one already."""
    lock_changes(session=session)
    previous = active(session=session)
    if previous is not None and previous.id == row.id:
        return None
    session.execute(update(ModelVersion).where(ModelVersion.active).values(active=False))
    row.active = True
    row.activated_at = utcnow()
    activation = ModelActivation(
        version=row.version,
        previous_version=previous.version if previous else None,
        actor=actor,
        at=row.activated_at,
    )
    session.add(activation)
    session.flush()
    return activation


def activations(*, session: Session, limit: int = 100) -> Sequence[ModelActivation]:
    query = select(ModelActivation).order_by(ModelActivation.id.desc()).limit(limit)
    return session.scalars(query).all()
