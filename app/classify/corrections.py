"""Agents' label corrections: stored with who and when, and exported as training data."""

from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.classify.models import Classification, LabelCorrection
from app.errors import InvalidInput, NotFound
from app.ingest.models import Mention
from app.routing.models import RoutingDecision
from app.teams.models import Team
from app.tickets.models import Ticket
from app.tickets.service import publish, record_event
from ml import LABELS


def correct(
    *,
    session: Session,
    mention_id: int,
    label: str,
    actor: str,
    note: str | None,
    teams: frozenset[str] | None,
) -> LabelCorrection:
    """Record the right label of a mention (a key of the team holding its ticket, or admin).

    The ticket opened by the mention takes the corrected label too; routing is not redone, a
    re-route is its own act.
    """
    if label not in LABELS:
        raise InvalidInput(f"unknown label {label!r}", details={"labels": list(LABELS)})
    classification, ticket = _mention_and_ticket(session=session, mention_id=mention_id)
    team = session.get(Team, ticket.team_id) if ticket is not None else None
    if teams is not None and (team is None or team.slug not in teams):
        raise NotFound(f"no mention {mention_id}", details={"mention_id": mention_id})
    correction = LabelCorrection(
        mention_id=mention_id,
        label=label,
        previous_label=current_label(session=session, classification=classification),
        actor=actor,
        note=note,
    )
    session.add(correction)
    if ticket is not None and team is not None and ticket.first_mention_id == mention_id:
        _relabel(session=session, ticket=ticket, team=team, label=label, actor=actor)
    session.flush()
    return correction


def _mention_and_ticket(
    *, session: Session, mention_id: int
) -> tuple[Classification, Ticket | None]:
    query = (
        select(Classification, Ticket)
        .join(RoutingDecision, RoutingDecision.mention_id == Classification.mention_id)
        .outerjoin(Ticket, Ticket.id == RoutingDecision.ticket_id)
        .where(Classification.mention_id == mention_id)
    )
    row = session.execute(query).tuples().first()
    if row is None:
        raise NotFound(f"no mention {mention_id}", details={"mention_id": mention_id})
    return row


def current_label(*, session: Session, classification: Classification) -> str:
    """The latest correction's label, else the model's."""
    latest = session.scalars(
        select(LabelCorrection.label)
        .where(LabelCorrection.mention_id == classification.mention_id)
        .order_by(LabelCorrection.id.desc())
        .limit(1)
    ).first()
    return latest or classification.label


def _relabel(*, session: Session, ticket: Ticket, team: Team, label: str, actor: str) -> None:
    if ticket.label == label:
        return
    data = {"from": ticket.label, "to": label, "mention_id": ticket.first_mention_id}
    ticket.label = label
    record_event(session=session, ticket=ticket, kind="relabelled", actor=actor, data=data)
    publish(session=session, ticket=ticket, team=team, type="ticket.updated")


def training_rows(*, session: Session) -> Iterator[dict[str, Any]]:
    """Each corrected mention once, with its latest label: the rows of a training file."""
    latest = (
        select(func.max(LabelCorrection.id).label("id"))
        .group_by(LabelCorrection.mention_id)
        .subquery()
    )
    query = (
        select(LabelCorrection, Mention.text, Mention.lang)
        .join(latest, latest.c.id == LabelCorrection.id)
        .join(Mention, Mention.id == LabelCorrection.mention_id)
        .order_by(LabelCorrection.mention_id)
    )
    for correction, text, lang in session.execute(query).tuples():
        yield {
            "text": text,
            "label": correction.label,
            "lang": lang,
            "source": "correction",
            "mention_id": correction.mention_id,
            "corrected_by": correction.actor,
            "corrected_at": correction.at.isoformat(),
        }
