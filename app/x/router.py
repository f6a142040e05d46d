"""HTTP routes of X's Account Activity webhook: authenticated by X's signature, not a key."""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import Account
from app.config import Settings
from app.db import get_session
from app.errors import InvalidInput, NotFound
from app.http import raw_body
from app.ingest import service as ingest
from app.x import activity

router = APIRouter(prefix="/v1/x", tags=["x"])


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
