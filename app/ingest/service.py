"""Ingest: store each post once, classify, route and queue it, in the caller's transaction."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.accounts.models import Account
from app.classify.models import Classification
from app.classify.schemas import ClassificationRead
from app.classify.service import Classifier, Verdict
from app.errors import BatchTooLarge, NotFound, UnknownAccount
from app.ingest.models import Mention
from app.ingest.schemas import AuthorRead, BatchItemRead, BatchRead, MentionIn, MentionRead
from app.ingest.store import AnyMention, Post, Stored, facts_of, store, stored_posts
from app.routing import service as routing
from app.routing.models import RoutingDecision
from app.routing.schemas import Explanation, RoutingRead
from app.teams.models import Team

Key = tuple[str, str]


@dataclass(frozen=True)
class Ingested:
    index: int
    mention_id: int
    created: bool
    # For a post this call stored: what was written, to answer without reading it back.
    stored: Stored | None = None


def ingest(
    *,
    session: Session,
    classifier: Classifier | None,
    mentions: Sequence[MentionIn],
    limit: int,
    reopen_within: timedelta,
    verdicts: Sequence[Verdict] | None = None,
) -> list[Ingested]:
    """Ingest mentions in order; a post already stored (or repeated in the batch) is a duplicate.

    The classifier classifies the new posts, unless the caller gives `verdicts`, one per
    mention, from the served model (an import classifies its next chunk meanwhile)."""
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
    stored: dict[Key, Stored] = {}
    if fresh:
        table = routing.active_table(session=session)
        posts = [
            Post(mention_in=mentions[i], account=account_of[i], verdict=verdict)
            for i, verdict in zip(
                fresh, _verdicts(classifier, mentions, fresh, verdicts), strict=True
            )
        ]
        stored = store(session=session, posts=posts, table=table, reopen_within=reopen_within)
        raced = {keys[i] for i in fresh} - stored.keys()  # a concurrent request stored them first
        known.update(_existing(session=session, keys=raced))
        known.update({key: s.mention.id for key, s in stored.items()})
    return [
        Ingested(
            index=i,
            mention_id=known[key],
            created=first_index[key] == i and key in stored,
            stored=stored.get(key) if first_index[key] == i else None,
        )
        for i, key in enumerate(keys)
    ]


def _verdicts(
    classifier: Classifier | None,
    mentions: Sequence[MentionIn],
    fresh: Sequence[int],
    given: Sequence[Verdict] | None,
) -> list[Verdict]:
    if given is not None:
        if len(given) != len(mentions):
            raise ValueError(f"{len(given)} verdicts for {len(mentions)} mentions")
        return [given[i] for i in fresh]
    if classifier is None:
        raise ValueError("ingest needs a classifier or the verdicts")
    return classifier.classify([mentions[i].text for i in fresh])


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
    return {
        (source, external_id): id_
        for source, external_id, id_ in stored_posts(session, keys, Mention.id)
    }


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


def reads(*, session: Session, outcomes: Sequence[Ingested]) -> list[MentionRead]:
    """Each outcome's mention as stored: what was just written is answered from memory, the
    duplicates are read in one query."""
    missing = [o.mention_id for o in outcomes if o.stored is None]
    read = read_mentions(session=session, ids=missing) if missing else {}
    return [read_of(o.stored) if o.stored else read[o.mention_id] for o in outcomes]


def batch_read(*, session: Session, outcomes: Sequence[Ingested]) -> BatchRead:
    """The answer to a batch: each mention as stored, in the order sent, duplicates marked."""
    items = [
        BatchItemRead(
            index=o.index, status="created" if o.created else "duplicate", mention=mention
        )
        for o, mention in zip(outcomes, reads(session=session, outcomes=outcomes), strict=True)
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
        author=_author(mention),
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


def read_of(stored: Stored) -> MentionRead:
    """The answer for a post just stored, from what was written. Built without validation:
    every value was validated on the way in or made by us, and checking a thousand answers
    again cost more than serialising them."""
    mention, verdict, route = stored.mention, stored.verdict, stored.route
    return MentionRead.model_construct(
        id=mention.id,
        source=mention.source,
        external_id=mention.external_id,
        account=stored.account.handle,
        author=_author(mention),
        text=mention.text,
        lang=mention.lang,
        created_at=mention.posted_at,
        received_at=mention.received_at,
        conversation_id=mention.conversation_id,
        in_reply_to_id=mention.in_reply_to_id,
        classification=ClassificationRead.model_construct(
            label=verdict.label,
            probability=verdict.probability,
            probabilities=verdict.probabilities,
            model_version=verdict.model_version,
            triage=verdict.triage,
        ),
        routing=RoutingRead(  # validated: the priority is a plain string until here
            team=stored.team,
            rule=route.rule_name,
            priority=route.priority,
            ticket_id=stored.ticket_id,
            table_version=route.table_version,
        ),
    )


def _author(mention: AnyMention) -> AuthorRead:
    """The author as stored: values that were validated on the way in."""
    return AuthorRead.model_construct(
        handle=mention.author_handle,
        id=mention.author_external_id,
        name=mention.author_name,
        followers=mention.author_followers,
        verified=mention.author_verified,
    )
