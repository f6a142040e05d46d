"""The generic signed webhook receiver: verify (Standard Webhooks, 5-minute window), refuse a
webhook id seen before, and ingest the mentions it carries, all in one transaction."""

import json
import time
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.classify.service import Classifier
from app.config import Settings
from app.delivery import signing
from app.delivery.models import InboundWebhook
from app.errors import Conflict, InvalidInput, NotFound
from app.ingest import service as ingest
from app.ingest.schemas import MentionBatchIn
from app.ingest.service import Ingested

TOLERANCE_SECONDS = 300
MAX_WEBHOOK_ID = 100  # the column's width


class ReplayedWebhook(Conflict):
    code = "replayed_webhook"


def verified_id(*, settings: Settings, source: str, headers: Mapping[str, str], body: bytes) -> str:
    """The webhook's id, once its signature holds; 404 for a source with no secret."""
    secret = settings.inbound_webhook_secrets.get(source)
    if secret is None:
        raise NotFound(f"no webhook source {source!r}", details={"source": source})
    return signing.verify(  # raises InvalidSignature: 401 invalid_signature
        secrets=[secret],
        headers=headers,
        body=body,
        now=int(time.time()),
        tolerance=TOLERANCE_SECONDS,
    )


def mentions_of(*, source: str, body: bytes) -> MentionBatchIn:
    """`{"mentions": [...]}`, each mention of this source (given, or taken from the URL)."""
    try:
        document: Any = json.loads(body)
        items = document["mentions"]
        for item in items:
            item.setdefault("source", source)
        return MentionBatchIn.model_validate(document)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InvalidInput('the body must be {"mentions": [...]}') from error
    except ValidationError as error:
        problems = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()]
        raise InvalidInput("the mentions are not valid", details=problems) from error


def ingest_once(
    *,
    session: Session,
    classifier: Classifier,
    settings: Settings,
    source: str,
    webhook_id: str,
    batch: MentionBatchIn,
) -> list[Ingested]:
    """Record the webhook id and ingest its mentions; a repeated id is a 409, nothing stored."""
    if len(webhook_id) > MAX_WEBHOOK_ID:
        raise InvalidInput(f"webhook-id is longer than {MAX_WEBHOOK_ID} characters")
    wrong = [i for i, m in enumerate(batch.mentions) if m.source != source]
    if wrong:
        raise InvalidInput(f"mentions of another source than {source!r}", details=wrong)
    session.add(InboundWebhook(source=source, webhook_id=webhook_id))
    try:
        session.flush()
    except IntegrityError as error:
        raise ReplayedWebhook(
            f"webhook {webhook_id!r} was received already", details={"webhook_id": webhook_id}
        ) from error
    return ingest.ingest(
        session=session,
        classifier=classifier,
        mentions=batch.mentions,
        limit=settings.max_batch_items,
        reopen_within=settings.reopen_window,
    )
