"""Replies on X: queued by an agent on a ticket, claimed by a worker, recorded with X's answer.

The worker posts with no transaction open (`app/x/sending.py`). A sent reply is the ticket's
first response; a reply that cannot be sent ends `failed`, with X's reason, on the ticket's
trail and in its team's webhooks.
"""

import secrets as random_tokens
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.errors import InvalidInput
from app.ingest.models import Mention
from app.teams.models import Team
from app.tickets import queue, sla
from app.tickets.models import DeadlineKind, Ticket
from app.tickets.service import publish, record_event
from app.tickets.workflow import Act
from app.x.activity import SOURCE
from app.x.models import Reply, ReplyState

WORKER_ACTOR = "system:x"


def queue_reply(
    *, session: Session, ticket: Ticket, text: str, mention_id: int | None, act: Act
) -> Reply:
    """Queue an answer to one of the ticket's posts from X: the given one, else the latest."""
    mention = _answered(session=session, ticket=ticket, mention_id=mention_id)
    reply = Reply(
        ticket_id=ticket.id,
        mention_id=mention.id,
        in_reply_to_id=mention.external_id,
        text=text,
        next_attempt_at=act.now,
        author=act.actor,
        via=act.via,
        created_at=act.now,
    )
    session.add(reply)
    session.flush()
    record_event(
        session=session,
        ticket=ticket,
        kind="reply_queued",
        actor=act.actor,
        mention_id=mention.id,
        data={"reply_id": reply.id, **({"via": act.via} if act.via else {})},
        at=act.now,
    )
    return reply


def _answered(*, session: Session, ticket: Ticket, mention_id: int | None) -> Mention:
    thread = queue.thread_mention_ids(session=session, ticket_id=ticket.id)
    query = select(Mention).where(Mention.id.in_(thread), Mention.source == SOURCE)
    if mention_id is not None:
        query = query.where(Mention.id == mention_id)
    mention = session.scalars(query.order_by(Mention.posted_at.desc(), Mention.id.desc())).first()
    if mention is None:
        what = f"mention {mention_id} is not a post from X" if mention_id else "no post from X"
        raise InvalidInput(
            f"ticket {ticket.id} has {what} in its thread to answer",
            details={"ticket_id": ticket.id, "mention_id": mention_id},
        )
    return mention


def of_ticket(*, session: Session, ticket_id: int) -> list[Reply]:
    query = select(Reply).where(Reply.ticket_id == ticket_id).order_by(Reply.id)
    return list(session.scalars(query))


@dataclass(frozen=True)
class Claimed:
    reply_id: int
    token: str
    attempt: int
    text: str
    in_reply_to_id: str


def claim(
    *, session: Session, now: datetime, lease: timedelta, limit: int, max_attempts: int
) -> list[Claimed]:
    """Due replies under a lease (`SKIP LOCKED` on PostgreSQL). One whose worker died while
    sending is due again when its lease ends: X refuses a repeated text as duplicate content,
    so a reply that did go out is not posted twice. One whose workers died on `max_attempts`
    of its attempts (a reply that crashes them) fails instead of being tried forever; the
    others due are claimed in its place."""
    due = or_(
        and_(Reply.state == ReplyState.QUEUED, Reply.next_attempt_at <= now),
        and_(Reply.state == ReplyState.SENDING, Reply.lease_expires_at <= now),
    )
    claimed: list[Claimed] = []
    while len(claimed) < limit:
        query = (
            select(Reply).where(due).order_by(Reply.next_attempt_at, Reply.id).limit(limit)
        ).with_for_update(skip_locked=True)
        batch = list(session.scalars(query))
        abandoned = False
        for reply in batch[: limit - len(claimed)]:
            if reply.state is ReplyState.SENDING:  # its worker stopped without an outcome
                reply.crashes += 1
                if reply.crashes >= max_attempts:
                    _abandon(session=session, reply=reply, now=now)
                    abandoned = True
                    continue
            reply.state, reply.claim_token = ReplyState.SENDING, random_tokens.token_hex(16)
            reply.lease_expires_at, reply.attempts = now + lease, reply.attempts + 1
            claimed.append(
                Claimed(
                    reply.id, reply.claim_token, reply.attempts, reply.text, reply.in_reply_to_id
                )
            )
        if not abandoned:
            break
        session.flush()
    return claimed


def _abandon(*, session: Session, reply: Reply, now: datetime) -> None:
    reply.state, reply.claim_token, reply.lease_expires_at = ReplyState.FAILED, None, None
    reply.last_error = (
        f"no outcome was recorded: the worker stopped while sending it, {reply.crashes} times; "
        "check on X whether it went out"
    )
    _on_ticket(session=session, reply=reply, kind="reply_failed", now=now)


@dataclass(frozen=True)
class Outcome:
    """X's answer: the reply's post id, or an error and when to try again (None: never).
    A rate limit does not count as an attempt; `stop_pass` holds the other replies back."""

    post_id: str | None = None
    error: str | None = None
    retry_at: datetime | None = None
    counts: bool = True
    stop_pass: bool = False


def record(*, session: Session, claimed: Claimed, outcome: Outcome, now: datetime) -> bool:
    """Store the outcome if this claim still holds the reply, or if it is a post X took (a
    success is never thrown away, even when the lease ran out meanwhile). A sent or failed
    reply shows on its ticket. Returns whether it was recorded."""
    reply = session.scalars(
        select(Reply).where(Reply.id == claimed.reply_id).with_for_update()
    ).one()
    sent = outcome.post_id is not None and reply.state is not ReplyState.SENT
    if reply.claim_token != claimed.token and not sent:
        return False
    reply.claim_token = reply.lease_expires_at = None
    if not outcome.counts:
        reply.attempts -= 1
    reply.last_error = outcome.error[:500] if outcome.error else None
    if outcome.post_id is not None:
        reply.state, reply.x_post_id, reply.sent_at = ReplyState.SENT, outcome.post_id, now
        _on_ticket(session=session, reply=reply, kind="replied", now=now)
    elif outcome.retry_at is not None:
        reply.state, reply.next_attempt_at = ReplyState.QUEUED, outcome.retry_at
    else:
        reply.state = ReplyState.FAILED
        _on_ticket(session=session, reply=reply, kind="reply_failed", now=now)
    return True


def _on_ticket(*, session: Session, reply: Reply, kind: str, now: datetime) -> None:
    ticket = session.scalars(
        select(Ticket).where(Ticket.id == reply.ticket_id).with_for_update()
    ).one()
    if kind == "replied":
        sla.meet(session=session, ticket=ticket, kinds=(DeadlineKind.FIRST_RESPONSE,), at=now)
    ticket.updated_at = now
    record_event(
        session=session,
        ticket=ticket,
        kind=kind,
        actor=WORKER_ACTOR,
        mention_id=reply.mention_id,
        data={
            "reply_id": reply.id,
            "author": reply.author,
            **({"x_post_id": reply.x_post_id} if reply.x_post_id else {}),
            **({"error": reply.last_error} if reply.last_error else {}),
        },
        at=now,
    )
    team = session.get_one(Team, ticket.team_id)
    publish(session=session, ticket=ticket, team=team, type="ticket.updated")
