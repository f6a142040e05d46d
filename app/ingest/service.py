"""Ingest: store each post once, classify, route and queue it, in the caller's transaction."""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.accounts.models import Account
from app.classify.language import guess_language
from app.classify.models import Classification
from app.classify.schemas import ClassificationRead
from app.classify.service import Classifier, Verdict
from app.db import utcnow
from app.errors import BatchTooLarge, NotFound, UnknownAccount
from app.ingest.models import Mention
from app.ingest.schemas import AuthorRead, BatchItemRead, BatchRead, MentionIn, MentionRead
from app.outbox import service as outbox
from app.routing import service as routing
from app.routing.models import RoutingDecision
from app.routing.rules import MentionFacts
from app.routing.schemas import Explanation, RoutingRead
from app.teams.models import Team
from app.tickets import service as tickets
from app.tickets.models import Ticket

Key = tuple[str, str]


@dataclass(frozen=True)
class Ingested:
    index: int
    mention_id: int
    created: bool


def ingest(
    *,
    session: Session,
    classifier: Classifier,
    mentions: Sequence[MentionIn],
    limit: int,
    reopen_within: timedelta,
) -> list[Ingested]:
    """Ingest mentions in order; a post already stored (or repeated in the batch) is a duplicate."""
    if len(mentions) > limit:
        raise BatchTooLarge(
            f"at most {limit} mentions per call",
            details={"limit": limit, "received": len(mentions)},
        )
    account_of = _resolve_accounts(session=session, mentions=mentions)
    keys = [(m.source, m.external_id) for m in mentions]
    first_index: dict[Key, int] = {}
    for i, key in enumerate(keys):
        first_index.setdefault(key, i)
    known = _existing(session=session, keys=set(keys))
    # In key order, so that concurrent batches holding the same posts take their locks in the
    # same order (PostgreSQL would otherwise deadlock them).
    fresh = sorted((i for key, i in first_index.items() if key not in known), key=keys.__getitem__)
    created: set[int] = set()
    if fresh:
        table = routing.active_table(session=session)
        verdicts = classifier.classify([mentions[i].text for i in fresh])
        for i, verdict in zip(fresh, verdicts, strict=True):
            mention_id = _store(
                session=session,
                mention_in=mentions[i],
                account=account_of[i],
                verdict=verdict,
                table=table,
                reopen_within=reopen_within,
            )
            if mention_id is None:  # a concurrent request stored the same post first
                mention_id = _existing(session=session, keys={keys[i]})[keys[i]]
            else:
                created.add(i)
            known[keys[i]] = mention_id
    return [
        Ingested(index=i, mention_id=known[key], created=i in created) for i, key in enumerate(keys)
    ]


def _resolve_accounts(*, session: Session, mentions: Sequence[MentionIn]) -> list[Account]:
    found = accounts.by_handles(session=session, handles={m.account for m in mentions})
    unknown = [
        {"index": i, "account": m.account} for i, m in enumerate(mentions) if m.account not in found
    ]
    if unknown:
        raise UnknownAccount("mentions address accounts that are not watched", details=unknown)
    return [found[m.account] for m in mentions]


def _existing(*, session: Session, keys: set[Key]) -> dict[Key, int]:
    """Ids of the posts among these (source, external_id) keys that are stored already."""
    found: dict[Key, int] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        query = select(Mention.source, Mention.external_id, Mention.id).where(
            tuple_(Mention.source, Mention.external_id).in_(chunk)
        )
        found.update(
            {
                (source, external_id): id_
                for source, external_id, id_ in session.execute(query).tuples()
            }
        )
    return found


def _store(
    *,
    session: Session,
    mention_in: MentionIn,
    account: Account,
    verdict: Verdict,
    table: routing.LoadedTable,
    reopen_within: timedelta,
) -> int | None:
    """Store, classify, route and queue one new post; None if another transaction has it."""
    mention = _insert_mention(session=session, mention_in=mention_in, account=account)
    if mention is None:
        return None
    session.add(Classification(mention_id=mention.id, **asdict(verdict)))
    route = routing.route(table, facts_of(mention, account, verdict, at=utcnow()))
    ticket = (
        tickets.open_or_join(
            session=session,
            mention=mention,
            label=verdict.label,
            route=route,
            reopen_within=reopen_within,
        )
        if route.team_id
        else None
    )
    # A follow-up joins its thread's open ticket, in whichever team holds it: the decision
    # records where the mention went, and the rule that matched.
    routing.record_decision(
        session=session,
        mention_id=mention.id,
        route=route,
        ticket_id=ticket.id if ticket else None,
        team_id=ticket.team_id if ticket else None,
    )
    if ticket is not None:
        _publish_routed(
            session=session, mention=mention, verdict=verdict, route=route, ticket=ticket
        )
    return mention.id


def _publish_routed(
    *, session: Session, mention: Mention, verdict: Verdict, route: routing.Route, ticket: Ticket
) -> None:
    """`mention.routed` for the team's systems: the post, what the model said, where it went."""
    outbox.record(
        session=session,
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


def facts_of(mention: Mention, account: Account, verdict: Verdict, *, at: datetime) -> MentionFacts:
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


def explain_routing(*, session: Session, mention_id: int) -> Explanation | None:
    """Why the mention was routed as it was: its stored decision replayed on the same table
    version (business hours as the teams keep them now); None if it was never routed."""
    query = (
        select(Mention, Account, Classification, RoutingDecision)
        .join(Account, Account.id == Mention.account_id)
        .join(Classification, Classification.mention_id == Mention.id)
        .join(RoutingDecision, RoutingDecision.mention_id == Mention.id)
        .where(Mention.id == mention_id)
    )
    row = session.execute(query).tuples().first()
    if row is None:
        return None
    mention, account, classification, decision = row
    verdict = Verdict(
        label=classification.label,
        probability=classification.probability,
        probabilities=classification.probabilities,
        model_version=classification.model_version,
        triage=classification.triage,
    )
    table = routing.load_table(session=session, version=decision.table_version)
    facts = facts_of(mention, account, verdict, at=decision.created_at)
    return routing.explain(table, facts)


def _insert_mention(*, session: Session, mention_in: MentionIn, account: Account) -> Mention | None:
    """INSERT ... ON CONFLICT DO NOTHING on the unique (source, external_id): idempotent."""
    author = mention_in.author
    root, key = _conversation(session=session, mention_in=mention_in)
    values = {
        "source": mention_in.source,
        "external_id": mention_in.external_id,
        "account_id": account.id,
        "author_handle": author.handle,
        "author_external_id": author.id,
        "author_name": author.name,
        "author_followers": author.followers,
        "author_verified": author.verified,
        "text": mention_in.text,
        "lang": mention_in.lang or guess_language(mention_in.text),
        "posted_at": mention_in.created_at or utcnow(),
        "conversation_id": mention_in.conversation_id,
        "in_reply_to_id": mention_in.in_reply_to_id,
        "conversation_root": root,
        "conversation_key": key,
        "raw": mention_in.raw,
    }
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(Mention)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["source", "external_id"])
        .returning(Mention)
    )
    return session.scalars(statement).first()


def _conversation(*, session: Session, mention_in: MentionIn) -> tuple[str, str]:
    """The conversation's root post, and this author's thread in it.

    The root is the conversation id, else the parent's root (a reply sent without one), else the
    post itself.
    """
    source = mention_in.source
    root = mention_in.conversation_id
    if root is None and mention_in.in_reply_to_id is not None:
        parent_root = session.scalar(
            select(Mention.conversation_root).where(
                Mention.source == source, Mention.external_id == mention_in.in_reply_to_id
            )
        )
        root = parent_root or mention_in.in_reply_to_id
    root = root or mention_in.external_id
    return root, f"{source}:{root}:{mention_in.author.handle.lower()}"


def read_mentions(*, session: Session, ids: Sequence[int]) -> dict[int, MentionRead]:
    """Stored mentions with their classification and routing, in one query."""
    query = (
        select(Mention, Account.handle, Classification, RoutingDecision, Team.slug)
        .join(Account, Account.id == Mention.account_id)
        .join(Classification, Classification.mention_id == Mention.id)
        .join(RoutingDecision, RoutingDecision.mention_id == Mention.id)
        .outerjoin(Team, Team.id == RoutingDecision.team_id)
        .where(Mention.id.in_(set(ids)))
    )
    return {
        mention.id: _mention_read(mention, handle, classification, decision, team)
        for mention, handle, classification, decision, team in session.execute(query).tuples()
    }


def batch_read(*, session: Session, outcomes: Sequence[Ingested]) -> BatchRead:
    """The answer to a batch: each mention as stored, in the order sent, duplicates marked."""
    read = read_mentions(session=session, ids=[o.mention_id for o in outcomes])
    items = [
        BatchItemRead(
            index=o.index,
            status="created" if o.created else "duplicate",
            mention=read[o.mention_id],
        )
        for o in outcomes
    ]
    created = sum(o.created for o in outcomes)
    return BatchRead(created=created, duplicates=len(items) - created, items=items)


def get_mention(*, session: Session, mention_id: int) -> MentionRead:
    found = read_mentions(session=session, ids=[mention_id]).get(mention_id)
    if found is None:
        raise NotFound(f"no mention {mention_id}", details={"mention_id": mention_id})
    return found


def _mention_read(
    mention: Mention,
    handle: str,
    classification: Classification,
    decision: RoutingDecision,
    team: str | None,
) -> MentionRead:
    return MentionRead(
        id=mention.id,
        source=mention.source,
        external_id=mention.external_id,
        account=handle,
        author=AuthorRead(
            handle=mention.author_handle,
            id=mention.author_external_id,
            name=mention.author_name,
            followers=mention.author_followers,
            verified=mention.author_verified,
        ),
        text=mention.text,
        lang=mention.lang,
        created_at=mention.posted_at,
        received_at=mention.received_at,
        conversation_id=mention.conversation_id,
        in_reply_to_id=mention.in_reply_to_id,
        classification=ClassificationRead.model_validate(classification),
        routing=RoutingRead(
            team=team,
            rule=decision.rule_name,
            priority=decision.priority,
            ticket_id=decision.ticket_id,
            table_version=decision.table_version,
        ),
    )
