"""HTTP routes of webhooks: teams' endpoints (a team's key or admin), deliveries and replays,
and the generic signed receiver for other systems' webhooks."""

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from sqlalchemy.orm import Session

from app.access.dependencies import Caller
from app.config import Settings
from app.db import get_read_session, get_session, utcnow
from app.delivery import inbound, service, ssrf
from app.delivery.models import Delivery, DeliveryAttempt, DeliveryState, WebhookEndpoint
from app.delivery.schemas import (
    AttemptRead,
    DeliveryRead,
    EndpointCreate,
    EndpointCreated,
    EndpointRead,
    EndpointUpdate,
    Replayed,
)
from app.errors import InvalidInput, NotFound
from app.fields import MAX_ROW_ID
from app.http import raw_body
from app.ingest import service as ingest_service
from app.ingest.schemas import BatchRead
from app.teams import service as teams

router = APIRouter(tags=["webhooks"])
SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]
TeamSlug = Annotated[str, Path(max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
ENDPOINTS = "/v1/teams/{team}/webhooks"


@router.post(ENDPOINTS, status_code=status.HTTP_201_CREATED)
def create_endpoint(
    team: TeamSlug, body: EndpointCreate, request: Request, session: SessionDep, caller: Caller
) -> EndpointCreated:
    """Register a URL for the team's events; the answer holds the signing secret, once."""
    _check_url(body.url, request)  # before the database: on SQLite, DNS under the write lock
    team_row = teams.visible(session=session, slug=team, teams=caller.teams)
    endpoint, secret = service.create_endpoint(
        session=session,
        team=team_row,
        url=body.url,
        event_types=body.event_types,
        enabled=body.enabled,
    )
    created = EndpointCreated(**_read(endpoint, team).model_dump(), secret=secret)
    session.commit()
    return created


@router.get(ENDPOINTS)
def list_endpoints(team: TeamSlug, session: ReadSessionDep, caller: Caller) -> list[EndpointRead]:
    """The team's endpoints, without their secrets."""
    team_row = teams.visible(session=session, slug=team, teams=caller.teams)
    return [_read(e, team) for e in service.endpoints_of(session=session, team=team_row)]


@router.patch(ENDPOINTS + "/{endpoint_id}")
def update_endpoint(
    team: TeamSlug,
    endpoint_id: RowId,
    body: EndpointUpdate,
    request: Request,
    session: SessionDep,
    caller: Caller,
) -> EndpointRead:
    """Change the URL, the event types, or enable/disable the endpoint."""
    if body.url is not None:
        _check_url(body.url, request)  # before the database, as at creation
    endpoint = _endpoint(session=session, team=team, endpoint_id=endpoint_id, caller=caller)
    if body.url is not None:
        endpoint.url = body.url
    if body.event_types is not None:
        endpoint.event_types = sorted(set(body.event_types))
    if body.enabled is not None:
        endpoint.enabled = body.enabled
        endpoint.disabled_reason = None if body.enabled else "disabled through the API"
        endpoint.failing_since = None
    read = _read(endpoint, team)
    session.commit()
    return read


@router.delete(ENDPOINTS + "/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_endpoint(
    team: TeamSlug, endpoint_id: RowId, session: SessionDep, caller: Caller
) -> Response:
    """Remove the endpoint and its deliveries."""
    session.delete(_endpoint(session=session, team=team, endpoint_id=endpoint_id, caller=caller))
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(ENDPOINTS + "/{endpoint_id}/rotate-secret")
def rotate_secret(
    team: TeamSlug, endpoint_id: RowId, session: SessionDep, caller: Caller
) -> EndpointCreated:
    """A new signing secret; the previous one keeps signing beside it for 24 hours."""
    endpoint = _endpoint(session=session, team=team, endpoint_id=endpoint_id, caller=caller)
    secret = service.rotate_secret(session=session, endpoint=endpoint, now=utcnow())
    created = EndpointCreated(**_read(endpoint, team).model_dump(), secret=secret)
    session.commit()
    return created


@router.get(ENDPOINTS + "/{endpoint_id}/deliveries")
def list_deliveries(
    team: TeamSlug,
    endpoint_id: RowId,
    session: ReadSessionDep,
    caller: Caller,
    state: DeliveryState | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> list[DeliveryRead]:
    """The endpoint's deliveries, newest first, each with its attempts."""
    endpoint = _endpoint(session=session, team=team, endpoint_id=endpoint_id, caller=caller)
    rows = service.deliveries_of(session=session, endpoint=endpoint, state=state, limit=limit)
    attempts = service.attempts_of(session=session, delivery_ids=[d.id for d in rows])
    return [_delivery_read(d, attempts.get(d.id, [])) for d in rows]


@router.post(ENDPOINTS + "/{endpoint_id}/replay-failed")
def replay_failed(
    team: TeamSlug, endpoint_id: RowId, session: SessionDep, caller: Caller
) -> Replayed:
    """Send every failed delivery of the endpoint again."""
    endpoint = _endpoint(session=session, team=team, endpoint_id=endpoint_id, caller=caller)
    count = service.replay_failed(session=session, endpoint=endpoint, now=utcnow())
    session.commit()
    return Replayed(replayed=count)


@router.post("/v1/deliveries/{delivery_id}/replay")
def replay(delivery_id: RowId, session: SessionDep, caller: Caller) -> DeliveryRead:
    """Send one delivery again, from its first attempt."""
    delivery = session.get(Delivery, delivery_id)
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id) if delivery else None
    slug = teams.slug_of(session=session, team_id=endpoint.team_id) if endpoint else None
    if delivery is None or slug is None or not caller.may_work(slug):
        raise NotFound(f"no delivery {delivery_id}", details={"delivery_id": delivery_id})
    service.replay(session=session, delivery=delivery, now=utcnow())
    read = _delivery_read(delivery, [])
    session.commit()
    return read


@router.post("/v1/webhooks/{source}")
def receive(
    source: Annotated[str, Path(max_length=32, pattern=r"^[a-z][a-z0-9_.-]*$")],
    request: Request,
    body: Annotated[bytes, Depends(raw_body)],
    session: SessionDep,
    reader: ReadSessionDep,
) -> BatchRead:
    """A signed webhook from another system carrying mentions (`{"mentions": [...]}`), verified
    with Standard Webhooks and a 5-minute window; a webhook id seen before is refused (409)."""
    settings: Settings = request.app.state.settings
    webhook_id = inbound.verified_id(
        settings=settings, source=source, headers=request.headers, body=body
    )
    outcomes = inbound.ingest_once(
        session=session,
        classifier=request.app.state.classifier,
        settings=settings,
        source=source,
        webhook_id=webhook_id,
        batch=inbound.mentions_of(source=source, body=body),
    )
    session.commit()
    return ingest_service.batch_read(session=reader, outcomes=outcomes)


def _check_url(url: str, request: Request) -> None:
    settings: Settings = request.app.state.settings
    try:
        ssrf.check_url(
            url,
            allow_http_loopback=settings.webhooks_allow_loopback,
            resolver=request.app.state.resolver,
        )
    except ssrf.UnsafeDestination as refusal:
        raise InvalidInput(
            f"this URL cannot receive webhooks: {refusal}", details={"url": url}
        ) from refusal


def _endpoint(*, session: Session, team: str, endpoint_id: int, caller: Caller) -> WebhookEndpoint:
    team_row = teams.visible(session=session, slug=team, teams=caller.teams)
    return service.get_endpoint(session=session, team=team_row, endpoint_id=endpoint_id)


def _read(endpoint: WebhookEndpoint, team: str) -> EndpointRead:
    return EndpointRead(
        id=endpoint.id,
        team=team,
        url=endpoint.url,
        event_types=endpoint.event_types,
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        failing_since=endpoint.failing_since,
        created_at=endpoint.created_at,
    )


def _delivery_read(delivery: Delivery, attempts: Sequence[DeliveryAttempt]) -> DeliveryRead:
    read = DeliveryRead.model_validate(delivery)
    read.history = [AttemptRead.model_validate(a) for a in attempts]
    return read
