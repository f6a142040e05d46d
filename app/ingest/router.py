"""HTTP routes of ingest: post mentions (one or a batch) and read them back."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from sqlalchemy.orm import Session

from app.access.dependencies import Caller, Ingester
from app.access.service import Principal
from app.classify.service import Classifier
from app.config import Settings
from app.db import get_read_session, get_session
from app.errors import NotFound
from app.fields import MAX_ROW_ID
from app.ingest import service
from app.ingest.schemas import BatchRead, MentionBatchIn, MentionIn, MentionRead
from app.tickets import queue

router = APIRouter(prefix="/v1/mentions", tags=["mentions"])
SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]


def request_classifier(request: Request) -> Classifier:
    classifier: Classifier = request.app.state.classifier
    return classifier


def request_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


ClassifierDep = Annotated[Classifier, Depends(request_classifier)]
SettingsDep = Annotated[Settings, Depends(request_settings)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": MentionRead, "description": "Already ingested: the first result, unchanged."}
    },
)
def post_mention(
    mention_in: MentionIn,
    response: Response,
    session: SessionDep,
    reader: ReadSessionDep,
    classifier: ClassifierDep,
    settings: SettingsDep,
    caller: Ingester,
) -> MentionRead:
    """Ingest one mention: store, classify, route and queue it (201); a repeat answers 200."""
    [outcome] = service.ingest(
        session=session,
        classifier=classifier,
        mentions=[mention_in],
        limit=1,
        reopen_within=settings.reopen_window,
    )
    session.commit()
    if not outcome.created:
        response.status_code = status.HTTP_200_OK
    return service.get_mention(session=reader, mention_id=outcome.mention_id)


@router.post("/batch")
def post_batch(
    batch: MentionBatchIn,
    session: SessionDep,
    reader: ReadSessionDep,
    classifier: ClassifierDep,
    settings: SettingsDep,
    caller: Ingester,
) -> BatchRead:
    """Ingest up to `max_batch_items` mentions in one transaction; results in the order sent."""
    outcomes = service.ingest(
        session=session,
        classifier=classifier,
        mentions=batch.mentions,
        limit=settings.max_batch_items,
        reopen_within=settings.reopen_window,
    )
    session.commit()
    return service.batch_read(session=reader, outcomes=outcomes)


@router.get("/{mention_id}")
def get_mention(
    mention_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)], session: ReadSessionDep, caller: Caller
) -> MentionRead:
    """One stored mention with its classification and routing. Keys that ingest see every
    mention; a team's key sees those routed to its team."""
    mention = service.get_mention(session=session, mention_id=mention_id)
    if not _may_read(session, caller, mention):
        raise NotFound(f"no mention {mention_id}", details={"mention_id": mention_id})
    return mention


def _may_read(session: Session, caller: Principal, mention: MentionRead) -> bool:
    """Ingest keys read every mention; a team's key those of the tickets its team holds now
    (a re-routed ticket's mentions follow it)."""
    if caller.allows("ingest"):
        return True
    ticket_id = mention.routing.ticket_id
    team = (
        queue.team_of(session=session, ticket_id=ticket_id)
        if ticket_id is not None
        else mention.routing.team
    )
    return team is not None and caller.may_work(team)
