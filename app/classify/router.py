"""HTTP routes of the model lifecycle: versions, activation, and agents' label corrections."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status
from sqlalchemy.orm import Session

from app.access.dependencies import Admin, Caller
from app.classify import corrections, registry, serving
from app.classify.schemas import (
    ActivationRead,
    CorrectionIn,
    CorrectionRead,
    ModelRead,
    ModelsRead,
)
from app.config import Settings
from app.db import get_read_session, get_session
from app.fields import MAX_ROW_ID

router = APIRouter(tags=["models"])
SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]
Version = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("/v1/models")
def list_models(request: Request, session: ReadSessionDep, admin: Admin) -> ModelsRead:
    """The registered model versions, newest first, and the one this process serves."""
    return ModelsRead(
        serving=request.app.state.classifier.version,
        versions=[ModelRead.model_validate(m) for m in registry.list_versions(session=session)],
    )


@router.get("/v1/models/activations")
def list_activations(session: ReadSessionDep, admin: Admin) -> list[ActivationRead]:
    """Which version was activated when and by whom, newest first."""
    return [ActivationRead.model_validate(a) for a in registry.activations(session=session)]


@router.post("/v1/models/{version}/activate")
def activate(
    version: Version,
    request: Request,
    session: SessionDep,
    reader: ReadSessionDep,
    admin: Admin,
) -> ModelRead:
    """Serve this version from now on, without a restart; a version whose artifact cannot be
    loaded is refused (422) and the running model keeps serving."""
    settings: Settings = request.app.state.settings
    # Loading takes seconds: do it before the write transaction, which on SQLite holds the lock.
    model = registry.load(registry.get(session=reader, version=version))
    reader.rollback()
    row = registry.get(session=session, version=version)
    registry.activate(session=session, row=row, actor=admin.actor)
    read = ModelRead.model_validate(row)
    session.commit()
    request.app.state.classifier = serving.classifier_for(model, settings)
    return read


@router.post("/v1/mentions/{mention_id}/label", status_code=status.HTTP_201_CREATED)
def correct_label(
    mention_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)],
    body: CorrectionIn,
    session: SessionDep,
    caller: Caller,
) -> CorrectionRead:
    """Record the right label of a mention: stored with who and when, used to train the next
    model. Keys of the team holding the mention's ticket, or admin."""
    correction = corrections.correct(
        session=session,
        mention_id=mention_id,
        label=body.label,
        actor=body.agent or caller.actor,
        note=body.note,
        teams=caller.teams,
    )
    session.commit()
    return CorrectionRead.model_validate(correction)
