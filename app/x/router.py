"""HTTP routes of X: the Account Activity webhook (authenticated by X's signature, not a key)
and the replies agents queue on their tickets."""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, status
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.dependencies import Caller
from app.accounts.models import Account
from app.config import Settings
from app.db import get_read_session, get_session, utcnow
from app.errors import InvalidInput, NotConfigured, NotFound
from app.fields import MAX_ROW_ID
from app.http import raw_body
from app.ingest import service as ingest
from app.tickets import queue
from app.tickets.workflow import Act
from app.x import activity, replies
from app.x.schemas import ReplyIn, ReplyRead

router = APIRouter(prefix="/v1/x", tags=["x"])
ticket_replies = APIRouter(prefix="/v1/tickets", tags=["x"])
TicketId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


class ActivityRead(BaseModel):
    created: int
    duplicates: int


def _consumer_secret(request: Request) -> str:
    settings: Settings = request.app.state.settings
    if settings.x_consumer_secret is None:
        raise NotFound("the X webhook is not configured (AIGUILLEUR_X_CONSUMER_SECRET)")
    return settings.x_consumer_secret.get_secret_value()


@router.get("/webhook")
def crc_challenge(
    request: Request, crc_token: Annotated[str, Query(min_length=1, max_length=512)]
) -> dict[str, str]:
    """X's challenge-response check: `{"response_token": "sha256=..."}`."""
    return activity.crc_response(_consumer_secret(request), crc_token)


@router.post("/webhook")
def account_activity(
    request: Request,
    body: Annotated[bytes, Depends(raw_body)],
    session: Annotated[Session, Depends(get_session)],
) -> ActivityRead:
    """Account Activity events, verified before they are read; posts to a watched account
    become mentions (once each, whichever channel brought them first)."""
    secret = _consumer_secret(request)
    activity.check_signature(secret, body, request.headers.get("x-twitter-webhooks-signature"))
    settings: Settings = request.app.state.settings
    mentions = activity.mentions_in(_document(body), _watched_handles(session))
    if not mentions:
        return ActivityRead(created=0, duplicates=0)
    outcomes = ingest.ingest(
        session=session,
        classifier=request.app.state.classifier,
        mentions=mentions,
        limit=settings.max_batch_items,
        reopen_within=settings.reopen_window,
    )
    session.commit()
    created = sum(o.created for o in outcomes)
    return ActivityRead(created=created, duplicates=len(outcomes) - created)


def _document(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError as error:
        raise InvalidInput("the body is not JSON") from error
    if not isinstance(document, dict):
        raise InvalidInput("the body is not a JSON object")
    return document


def _watched_handles(session: Session) -> dict[str, str]:
    rows = session.execute(
        select(Account.x_user_id, Account.handle).where(Account.x_user_id.is_not(None))
    ).tuples()
    return {str(user_id): handle for user_id, handle in rows}


@ticket_replies.post("/{ticket_id}/replies", status_code=status.HTTP_202_ACCEPTED)
def queue_reply(
    ticket_id: TicketId,
    body: ReplyIn,
    request: Request,
    session: Annotated[Session, Depends(get_session)],
    caller: Caller,
) -> ReplyRead:
    """Answer the customer on X: the reply is queued, and the worker posts it in reply to the
    ticket's latest post from X (or `mention_id`). Once sent it is the first response."""
    settings: Settings = request.app.state.settings
    if not settings.x_writes:
        raise NotConfigured("replies on X are not configured (AIGUILLEUR_X_ACCESS_TOKEN, ...)")
    ticket = queue.get_ticket(session=session, ticket_id=ticket_id, teams=caller.teams, lock=True)
    act = Act(actor=body.agent or caller.actor, now=utcnow(), via=caller.reference)
    reply = replies.queue_reply(
        session=session, ticket=ticket, text=body.text, mention_id=body.mention_id, act=act
    )
    read = ReplyRead.model_validate(reply)
    session.commit()
    return read


@ticket_replies.get("/{ticket_id}/replies")
def list_replies(
    ticket_id: TicketId,
    session: Annotated[Session, Depends(get_read_session)],
    caller: Caller,
) -> list[ReplyRead]:
    """The ticket's replies on X, oldest first, each with its state and X's post id."""
    queue.get_ticket(session=session, ticket_id=ticket_id, teams=caller.teams)
    rows = replies.of_ticket(session=session, ticket_id=ticket_id)
    return [ReplyRead.model_validate(r) for r in rows]
