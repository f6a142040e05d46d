"""HTTP routes of ingest: post mentions (one or a batch) and read them back."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from pydantic import BaseModel
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
    response_model=MentionRead,
    responses={
        200: {"model": MentionRead, "description": "Already ingested: the first result, unchanged."}
    },
)
async def post_mention(mention_in: MentionIn, request: Request, caller: Ingester) -> Response:
    """Ingest one mention: store, classify, route and queue it (201); a repeat answers 200.

    Mentions posted at the same moment are written together, in one transaction; each answer
    is sent once that transaction is committed."""
    answer = await request.app.state.batcher.ingest(mention_in)
    return _json(answer.mention, status.HTTP_201_CREATED if answer.created else status.HTTP_200_OK)


@router.post("/batch", response_model=BatchRead)
def post_batch(
    batch: MentionBatchIn,
    session: SessionDep,
    reader: ReadSessionDep,
    classifier: ClassifierDep,
    settings: SettingsDep,
    caller: Ingester,
) -> Response:
    """Ingest up to `max_batch_items` mentions in one transaction; results in the order sent."""
    outcomes = service.ingest(
        session=session,
        classifier=classifier,
        mentions=batch.mentions,
        limit=settings.max_batch_items,
        reopen_within=settings.reopen_window,
    )
    session.commit()
    return _json(service.batch_read(session=reader, outcomes=outcomes), status.HTTP_200_OK)


def _json(body: BaseModel, status_code: int) -> Response:
    """The answer serialised once, by Pydantic, straight to JSON bytes."""
    return Response(body.model_dump_json(), status_code=status_code, media_type="application/json")


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
