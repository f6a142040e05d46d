"""Writing new posts set by set: one statement per table for a whole batch, not one per post.

A thousand posts cost a handful of multi-row INSERTs: the mentions, their classifications,
the tickets of new threads with their deadlines, the routing decisions, the audit and outbox
rows. Only what needs a lock on an existing ticket (a follow-up joining its thread, a reopening,
a thread another transaction opened meanwhile) goes one post at a time, through
`tickets.open_or_join`, which handles those races.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.models import Account
from app.classify.language import guess_language
from app.classify.models import Classification
from app.classify.service import Verdict
from app.db import insert_rows, table_of, utcnow
from app.ingest.models import Mention
from app.ingest.schemas import MentionIn
from app.outbox import service as outbox
from app.routing import service as routing
from app.routing.models import RoutingDecision
from app.routing.rules import MentionFacts
from app.teams import service as teams
from app.teams.models import Team
from app.tickets import service as tickets
from app.tickets import sla
from app.tickets.models import Ticket, TicketDeadline, TicketEvent, TicketState

Key = tuple[str, str]
CHUNK = 500  # keys per IN (...) list


@dataclass(frozen=True)
class Post:
    """A post not stored yet, the account it addresses and what the model said about it."""

    mention_in: MentionIn
    account: Account
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class Written:
    """A mention as this transaction wrote it: its columns and new id, without an ORM object
    (building a thousand of those cost more than inserting them); nothing changes it later."""

    id: int
    source: str
    external_id: str
    account_id: int
    author_handle: str
    author_external_id: str | None
    author_name: str | None
    author_followers: int | None
    author_verified: bool | None
    text: str
    lang: str | None
    posted_at: datetime
    received_at: datetime
    conversation_id: str | None
    in_reply_to_id: str | None
    conversation_root: str
    conversation_key: str
    raw: dict[str, Any] | None


# A mention read from the database, or one this transaction just wrote.
AnyMention = Mention | Written


@dataclass(frozen=True, slots=True)
class Opened:
    """A ticket this transaction opened in bulk, as written, like `Written` for mentions."""

    id: int
    team_id: int
    conversation_key: str
    state: TicketState
    priority: str
    label: str
    account_id: int
    first_mention_id: int
    tags: list[str]
    opened_at: datetime
    cycle_started_at: datetime
    due_at: datetime
    assignee: str | None = None
    breached: bool = False


# A ticket read from the database (or changed through the ORM), or one opened in bulk here.
AnyTicket = Ticket | Opened


@dataclass(frozen=True)
class Stored:
    """What was written for one new post: enough to answer without reading it back."""

    mention: Written
    account: Account
    verdict: Verdict
    route: routing.Route
    ticket_id: int | None
    team: str | None  # the slug of the team holding its ticket


def store(
    *,
    session: Session,
    posts: Sequence[Post],
    table: routing.LoadedTable,
    reopen_within: timedelta,
) -> dict[Key, Stored]:
    """Store, classify, route and queue the posts (in (source, external_id) order); a post that
    another transaction stored first is left out of the answer."""
    mentions = _insert_mentions(session=session, posts=posts)
    new = [(post, mentions[_key(post)]) for post in posts if _key(post) in mentions]
    if not new:
        return {}
    insert_rows(session, Classification, [_classification(m, p.verdict) for p, m in new])
    at = utcnow()
    routes = [routing.route(table, facts_of(m, p.account, p.verdict, at=at)) for p, m in new]
    ticket_of = _queue(
        session=session, new=new, routes=routes, terms=table.team_terms, reopen_within=reopen_within
    )
    slugs = {team_id: slug for slug, team_id in table.team_ids.items()}
    stored = {}
    decisions = []
    events = []
    for (post, mention), route in zip(new, routes, strict=True):
        ticket = ticket_of.get(mention.id)
        decisions.append(_decision(mention, route, ticket, at))
        if ticket is not None:
            events.append(
                _routed_event(mention=mention, verdict=post.verdict, route=route, ticket=ticket)
            )
        team_id = ticket.team_id if ticket else None
        stored[_key(post)] = Stored(
            mention=mention,
            account=post.account,
            verdict=post.verdict,
            route=route,
            ticket_id=ticket.id if ticket else None,
            team=slugs.get(team_id) if team_id is not None else None,
        )
    insert_rows(session, RoutingDecision, decisions)
    outbox.record_many(session=session, rows=events)
    return stored


def _key(post: Post) -> Key:
    return post.mention_in.source, post.mention_in.external_id


def _insert_mentions(*, session: Session, posts: Sequence[Post]) -> dict[Key, Written]:
    """One multi-row INSERT of the posts; the rows come back for the posts inserted, not for
    those another transaction stored since our look-up (as written, with their new ids)."""
    roots = _conversation_roots(session=session, posts=[p.mention_in for p in posts])
    now = utcnow()
    rows = [_mention_row(post, roots[_key(post)], now) for post in posts]
    table = table_of(Mention)
    returned = (table.c.id, table.c.source, table.c.external_id)
    # A plain INSERT is compiled once per process; SQLAlchemy cannot cache the ON CONFLICT form,
    # whose compilation would cost more than the insert. It is only needed after a conflict.
    session.flush()  # outside the try: a pending row's error is not this insert's conflict
    try:
        with _alone(session, len(rows)):
            inserted = session.execute(insert(table).returning(*returned), rows).all()
    except IntegrityError:
        statement = (
            _dialect(session)
            .insert(table)
            .on_conflict_do_nothing(index_elements=["source", "external_id"])
            .returning(*returned)
        )
        inserted = session.execute(statement, rows).all()
    row_of = {(row["source"], row["external_id"]): row for row in rows}
    return {
        (source, external_id): Written(id=id_, **row_of[source, external_id])
        for id_, source, external_id in inserted
    }


@contextmanager
def _alone(session: Session, rows: int) -> Iterator[None]:
    """The block's INSERT of these rows may fail on a conflict (caught by the caller) without
    failing the transaction. PostgreSQL aborts the whole transaction on an error, so the
    statement runs in a savepoint there. SQLite backs out the failed statement alone and the
    transaction goes on, so a savepoint would only cost its two statements (on a group of
    single posts, a tenth of the transaction's fixed cost), as long as the rows go in one
    statement: SQLAlchemy sends more than a page of them as several."""
    dialect = session.get_bind().dialect
    if dialect.name == "sqlite" and rows <= dialect.insertmanyvalues_page_size:
        yield
        return
    with session.begin_nested():
        yield


def _dialect(session: Session) -> Any:
    return postgresql if session.get_bind().dialect.name == "postgresql" else sqlite


def _mention_row(post: Post, root: str, now: datetime) -> dict[str, Any]:
    mention_in, author = post.mention_in, post.mention_in.author
    return {
        "source": mention_in.source,
        "external_id": mention_in.external_id,
        "account_id": post.account.id,
        "author_handle": author.handle,
        "author_external_id": author.id,
        "author_name": author.name,
        "author_followers": author.followers,
        "author_verified": author.verified,
        "text": mention_in.text,
        "lang": mention_in.lang or guess_language(mention_in.text),
        "posted_at": mention_in.created_at or now,
        "received_at": now,
        "conversation_id": mention_in.conversation_id,
        "in_reply_to_id": mention_in.in_reply_to_id,
        "conversation_root": root,
        "conversation_key": f"{mention_in.source}:{root}:{author.handle.lower()}",
        "raw": mention_in.raw,
    }


def _conversation_roots(*, session: Session, posts: Sequence[MentionIn]) -> dict[Key, str]:
    """Each post's conversation root: its conversation id, else its parent's root (the parent
    stored already or in the same batch), else the parent's id, else the post itself."""
    in_batch = {(p.source, p.external_id): p for p in posts}
    parents = {
        (p.source, p.in_reply_to_id)
        for p in posts
        if p.conversation_id is None and p.in_reply_to_id is not None
    }
    stored = _stored_roots(session=session, keys=parents - in_batch.keys())
    roots: dict[Key, str] = {}
    for post in posts:
        _resolve_root(post, in_batch=in_batch, stored=stored, roots=roots)
    return roots


def _resolve_root(
    post: MentionIn,
    *,
    in_batch: dict[Key, MentionIn],
    stored: dict[Key, str],
    roots: dict[Key, str],
) -> str:
    """Walk up the replies within the batch (iteratively: a thread may be long, or loop)."""
    chain: list[Key] = []
    current = post
    while True:
        key = (current.source, current.external_id)
        if key in roots:
            root = roots[key]
            break
        chain.append(key)
        if current.conversation_id is not None or current.in_reply_to_id is None:
            root = current.conversation_id or current.external_id
            break
        parent_key = (current.source, current.in_reply_to_id)
        parent = in_batch.get(parent_key)
        if parent is None or parent_key in chain:
            root = stored.get(parent_key) or current.in_reply_to_id
            break
        current = parent
    for key in chain:
        roots[key] = root
    return root


def _stored_roots(*, session: Session, keys: set[Key]) -> dict[Key, str]:
    return {(s, e): root for s, e, root in stored_posts(session, keys, Mention.conversation_root)}


def stored_posts(session: Session, keys: set[Key], column: Any) -> list[tuple[str, str, Any]]:
    """(source, external_id, column) of the posts among these keys that are stored already.

    By source, each an `external_id IN (...)` on the unique index, CHUNK at a time: PostgreSQL
    plans a list of (source, external_id) pairs as one index scan per pair, 35 times slower for
    500 of them (70 ms against 2)."""
    if not keys:
        return []
    by_source: dict[str, list[str]] = {}
    for source, external_id in sorted(keys):
        by_source.setdefault(source, []).append(external_id)
    found: list[tuple[str, str, Any]] = []
    with _planned_for_its_values(session):
        for source, ids in by_source.items():
            for start in range(0, len(ids), CHUNK):
                query = select(Mention.source, Mention.external_id, column).where(
                    Mention.source == source, Mention.external_id.in_(ids[start : start + CHUNK])
                )
                found.extend(session.execute(query).tuples())
    return found


@contextmanager
def _planned_for_its_values(session: Session) -> Iterator[None]:
    """On PostgreSQL, plan the statements of the block for their own parameters.

    psycopg prepares a statement run five times, and PostgreSQL then plans it once for any
    parameters: for these look-ups that generic plan reads every mention of the source (100 ms
    a batch and growing with the table, instead of 2). The inserts, though, gain from a
    generic plan, so the setting holds for the look-ups alone: the value in force before is
    put back after them. If they fail, the transaction is rolled back, which undoes the
    setting, and their own error is what the caller sees."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    before = session.execute(text("SELECT current_setting('plan_cache_mode')")).scalar_one()
    session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    yield
    session.execute(text("SELECT set_config('plan_cache_mode', :before, true)"), {"before": before})


def _classification(mention: Written, verdict: Verdict) -> dict[str, Any]:
    return {
        "mention_id": mention.id,
        "label": verdict.label,
        "probability": verdict.probability,
        "probabilities": verdict.probabilities,
        "model_version": verdict.model_version,
        "triage": verdict.triage,
        # The transaction's instant, as the mention's: one time to format for all of a
        # batch's rows, not one per row (a column default is called for each).
        "created_at": mention.received_at,
    }


def _decision(
    mention: Written, route: routing.Route, ticket: AnyTicket | None, at: datetime
) -> dict[str, Any]:
    """The routing decision: the rule that matched, and the ticket (and its team) the post
    went to; a follow-up joins its thread's ticket in whichever team holds it."""
    return {
        "mention_id": mention.id,
        "table_version": route.table_version,
        "rule_id": route.rule_id,
        "rule_name": route.rule_name,
        "team_id": ticket.team_id if ticket else None,
        "priority": route.priority,
        "ticket_id": ticket.id if ticket else None,
        "created_at": at,
    }


def _queue(
    *,
    session: Session,
    new: list[tuple[Post, Written]],
    routes: list[routing.Route],
    terms: dict[int, teams.TeamTerms],
    reopen_within: timedelta,
) -> dict[int, AnyTicket]:
    """The ticket of each routed mention (by mention id): new threads get theirs in one INSERT;
    the others (a thread with an open or recently resolved ticket, a second post of a thread in
    the same batch, a thread another transaction opened meanwhile) go through open_or_join."""
    routed = [
        (post, m, route) for (post, m), route in zip(new, routes, strict=True) if route.team_id
    ]
    if not routed:
        return {}
    busy = _threads_with_tickets(
        session=session,
        keys={m.conversation_key for _, m, _ in routed},
        since=utcnow() - reopen_within,
    )
    openers: dict[str, tuple[Post, Written, routing.Route]] = {}
    for post, mention, route in routed:
        if mention.conversation_key not in busy:
            openers.setdefault(mention.conversation_key, (post, mention, route))
    opened = _open_tickets(session=session, openers=list(openers.values()), terms=terms)
    ticket_of: dict[int, AnyTicket] = {ticket.first_mention_id: ticket for ticket in opened}
    for post, mention, route in routed:
        if mention.id not in ticket_of:
            ticket_of[mention.id] = tickets.open_or_join(
                session=session,
                mention=mention,
                label=post.verdict.label,
                route=route,
                reopen_within=reopen_within,
            )
    return ticket_of


def _threads_with_tickets(*, session: Session, keys: set[str], since: datetime) -> set[str]:
    """The threads that have an unresolved ticket, or one resolved since `since` (to reopen)."""
    found: set[str] = set()
    ordered = sorted(keys)
    for start in range(0, len(ordered), CHUNK):
        query = select(Ticket.conversation_key).where(
            Ticket.conversation_key.in_(ordered[start : start + CHUNK]),
            or_(Ticket.state != TicketState.RESOLVED, Ticket.resolved_at >= since),
        )
        found.update(session.scalars(query))
    return found


def _open_tickets(
    *,
    session: Session,
    openers: list[tuple[Post, Written, routing.Route]],
    terms: dict[int, teams.TeamTerms],
) -> list[Opened]:
    """One new ticket per thread in one INSERT, with the deadlines, audit and outbox rows that
    `tickets.open_or_join` writes. If another transaction opened one of these threads since our
    look-up, nothing is opened here and every post goes through open_or_join instead."""
    if not openers:
        return []
    now = utcnow()
    wanted = {route.team_id for _, _, route in openers if route.team_id is not None}
    terms_by_team = _team_terms(session=session, terms=terms, ids=wanted)
    clocks = {team_id: _SlaClock(found, now) for team_id, found in terms_by_team.items()}
    # In thread order, so that concurrent transactions take these index locks in one order.
    openers = sorted(openers, key=lambda opener: opener[1].conversation_key)
    rows = [_ticket_row(post, m, route, clocks, now) for post, m, route in openers]
    table = table_of(Ticket)
    session.flush()  # outside the try: a pending row's error is not this insert's conflict
    try:
        with _alone(session, len(rows)):
            returned = session.execute(
                insert(table).returning(table.c.id, table.c.first_mention_id), rows
            ).all()
    except IntegrityError:
        return []
    row_of = {row["first_mention_id"]: row for row in rows}
    opened = [Opened(id=id_, **row_of[mention_id]) for id_, mention_id in returned]
    insert_rows(
        session,
        TicketDeadline,
        [{"ticket_id": t.id, **d} for t in opened for d in clocks[t.team_id].deadlines(t.priority)],
    )
    routes = {m.id: route for _, m, route in openers}
    insert_rows(
        session, TicketEvent, [_created_event(t, routes[t.first_mention_id], now) for t in opened]
    )
    outbox.record_many(
        session=session,
        rows=[
            outbox.row(
                **tickets.publication(
                    ticket=ticket,
                    team=terms_by_team[ticket.team_id],
                    holder=terms_by_team[ticket.team_id],
                    type="ticket.created",
                    mention_id=ticket.first_mention_id,
                )
            )
            for ticket in opened
        ],
    )
    return opened


def _team_terms(
    *, session: Session, terms: dict[int, teams.TeamTerms], ids: set[int]
) -> dict[int, teams.TeamTerms]:
    """The terms of these teams, from the routing table's; a team it lacks (its row did not give
    terms when the table was loaded) is read here, and raises here if it still does not."""
    found = {team_id: terms[team_id] for team_id in ids if team_id in terms}
    if missing := ids - found.keys():
        for team in session.scalars(select(Team).where(Team.id.in_(missing))):
            found[team.id] = teams.terms_of(team)
    return found


def _ticket_row(
    post: Post,
    mention: Written,
    route: routing.Route,
    clocks: dict[int, "_SlaClock"],
    now: datetime,
) -> dict[str, Any]:
    assert route.team_id is not None
    assert route.priority is not None
    return {
        "team_id": route.team_id,
        "conversation_key": mention.conversation_key,
        "state": TicketState.OPEN,
        "priority": route.priority,
        "label": post.verdict.label,
        "account_id": mention.account_id,
        "first_mention_id": mention.id,
        "tags": list(route.tags),
        "opened_at": now,
        "cycle_started_at": now,
        "due_at": min(d["due_at"] for d in clocks[route.team_id].deadlines(route.priority)),
    }


def _created_event(ticket: Opened, route: routing.Route, now: datetime) -> dict[str, Any]:
    """The audit row of an opening, as `tickets.record_event` writes it."""
    return {
        "ticket_id": ticket.id,
        "kind": "created",
        "actor": tickets.SYSTEM_ACTOR,
        "from_state": None,
        "to_state": ticket.state.value,
        "mention_id": ticket.first_mention_id,
        "note": None,
        "data": {"rule": route.rule_name, "table_version": route.table_version},
        "at": now,
    }


class _SlaClock:
    """`sla.schedule` for the tickets a batch opens: the team's policy and clock from its terms,
    and the deadlines of each priority computed once, since the batch's tickets open together."""

    def __init__(self, terms: teams.TeamTerms, start: datetime) -> None:
        self.policy = terms.policy
        self.clock = terms.clock
        self.start = start
        self.computed: dict[str, list[dict[str, Any]]] = {}

    def deadlines(self, priority: str) -> list[dict[str, Any]]:
        if priority not in self.computed:
            due = sla.cycle_deadlines(
                policy=self.policy, clock=self.clock, priority=priority, start=self.start
            )
            self.computed[priority] = [
                {"kind": kind.value, "due_at": d.due_at, "warn_at": d.warn_at}
                for kind, d in due.items()
            ]
        return self.computed[priority]


def _routed_event(
    *, mention: Written, verdict: Verdict, route: routing.Route, ticket: AnyTicket
) -> dict[str, Any]:
    """`mention.routed` for the team's systems: the post, what the model said, where it went."""
    return outbox.row(
        type="mention.routed",
        subject_type="mention",
        subject_id=str(mention.id),
        team_id=ticket.team_id,
        data={
            "mention": {
                "id": mention.id,
                "source": mention.source,
                "external_id": mention.external_id,
                "author": mention.author_handle,
                "text": mention.text,
                "lang": mention.lang,
                "posted_at": mention.posted_at.isoformat(),
            },
            "classification": {"label": verdict.label, "probability": verdict.probability},
            "routing": {
                "rule": route.rule_name,
                "table_version": route.table_version,
                "priority": route.priority,
                "ticket_id": ticket.id,
            },
        },
    )


def facts_of(
    mention: AnyMention, account: Account, verdict: Verdict, *, at: datetime
) -> MentionFacts:
    """What the routing rules look at for this mention, routed at this moment."""
    return MentionFacts(
        label=verdict.label,
        probability=verdict.probability,
        triage=verdict.triage,
        account_handle=account.handle,
        account_kind=account.kind.value,
        lang=mention.lang,
        text=mention.text,
        author_handle=mention.author_handle,
        author_verified=mention.author_verified,
        author_followers=mention.author_followers,
        at=at,
    )
