"""Routing tables: store versions, load one, route a mention, explain a route, record why."""

import hashlib
import json
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import String, cast, func, select, update
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.db import one_at_a_time
from app.errors import InvalidConfiguration, NoRoutingTable, NotFound
from app.routing import rules as matching
from app.routing.models import RoutingDecision, RoutingRule, RoutingTable
from app.routing.rules import MentionFacts
from app.routing.schemas import Explanation, RuleSpec, TableRead, TableSpec, VersionRead
from app.teams import service as teams
from app.teams.calendar import Calendar
from app.teams.models import Team

log = logging.getLogger(__name__)

# An arbitrary constant naming the advisory lock of routing table changes.
TABLE_CHANGE_LOCK = 0x41_69_67_52  # "AigR"


@dataclass(frozen=True)
class LoadedTable:
    """A table version, ready to match: rules in order with their row ids, teams and hours."""

    version: int
    rules: list[RuleSpec]
    rule_ids: list[int]
    team_ids: dict[str, int]
    calendars: dict[str, Calendar] = field(default_factory=dict)
    # Every team's terms, by id, as the table's stamp saw the teams: the tickets a group opens
    # read them here instead of reading and parsing the teams' rows again.
    team_terms: dict[int, teams.TeamTerms] = field(default_factory=dict)

    def is_open(self, team: str, at: datetime) -> bool:
        return self.calendars[team].is_open(at)

    @cached_property
    def _positions(self) -> tuple[dict[str, list[int]], list[int]]:
        return matching.positions_by_label(self.rules)

    def positions_for(self, label: str) -> list[int]:
        """The rules a mention with this label can match, in table order."""
        by_label, any_label = self._positions
        return by_label.get(label, any_label)


@dataclass(frozen=True)
class Route:
    """Where one mention goes, and which rule of which table version said so."""

    table_version: int
    rule_id: int
    rule_name: str
    team: str | None
    team_id: int | None
    priority: str | None
    tags: tuple[str, ...] = ()


def checksum(spec: TableSpec) -> str:
    canonical = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def apply_table(*, session: Session, spec: TableSpec, source: str) -> tuple[RoutingTable, bool]:
    """Store the table as the new active version, unless it is the active one already."""
    one_at_a_time(session, TABLE_CHANGE_LOCK)  # two at once would read the same last version
    current = _active_row(session=session)
    digest = checksum(spec)
    if current is not None and current.checksum == digest:
        return current, False
    team_rows = _teams_of(session=session, spec=spec)
    version = (session.scalar(select(func.max(RoutingTable.version))) or 0) + 1
    session.execute(update(RoutingTable).where(RoutingTable.active).values(active=False))
    table = RoutingTable(version=version, active=True, checksum=digest, source=source[:200])
    table.rules = [_rule_row(position, rule, team_rows) for position, rule in enumerate(spec.rules)]
    session.add(table)
    session.flush()
    return table, True


def check_table(*, session: Session, spec: TableSpec) -> None:
    """Everything `apply_table` would refuse, without storing anything."""
    _teams_of(session=session, spec=spec)


def _check_accounts(*, session: Session, spec: TableSpec) -> None:
    """A rule naming an account nobody watches would silently never match: refuse it."""
    wanted = {handle for rule in spec.rules for handle in rule.when.accounts or ()}
    unknown = sorted(wanted - accounts.by_handles(session=session, handles=wanted).keys())
    if unknown:
        raise InvalidConfiguration(
            f"the routing table names accounts that are not watched: {', '.join(unknown)}",
            details={"unknown_accounts": unknown},
        )


def _teams_of(*, session: Session, spec: TableSpec) -> dict[str, Team]:
    _check_accounts(session=session, spec=spec)
    wanted = {rule.team for rule in spec.rules if rule.team is not None}
    found = teams.by_slugs(session=session, slugs=wanted)
    unknown = sorted(wanted - found.keys())
    if unknown:
        raise InvalidConfiguration(
            f"the routing table sends to unknown teams: {', '.join(unknown)}",
            details={"unknown_teams": unknown},
        )
    return found


def _rule_row(position: int, rule: RuleSpec, team_rows: dict[str, Team]) -> RoutingRule:
    return RoutingRule(
        position=position,
        name=rule.name,
        conditions=rule.when.model_dump(mode="json", exclude_none=True),
        team_id=team_rows[rule.team].id if rule.team else None,
        priority=rule.priority,
        tags={"tags": rule.tags},
    )


def _active_row(*, session: Session) -> RoutingTable | None:
    return session.scalars(select(RoutingTable).where(RoutingTable.active)).first()


def _row(*, session: Session, version: int | None) -> RoutingTable:
    if version is None:
        row = _active_row(session=session)
        if row is None:
            raise NoRoutingTable("no routing table is active: apply a configuration first")
        return row
    row = session.scalars(select(RoutingTable).where(RoutingTable.version == version)).first()
    if row is None:
        raise NotFound(f"no routing table version {version}", details={"version": version})
    return row


# Per database: the loaded active table and the stamp it was loaded under.
_active: "weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], LoadedTable]]" = (
    weakref.WeakKeyDictionary()
)


def active_table(*, session: Session) -> LoadedTable:
    """The active routing table; without one nothing can be routed, which is a setup error.

    Loading it (its rules validated, the teams and their calendars) took a millisecond, for
    every group of posts. It is loaded again only when its stamp changes: which table row is
    active, or any team's row (a team added, removed or changed, in any process)."""
    stamp = _stamp(session=session)
    bind = session.get_bind()
    cached = _active.get(bind)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    table = load_table(session=session, version=None)
    # Read after the stamp: if a change came between the two, the next stamp differs.
    _active[bind] = (stamp, table)
    return table


def _stamp(*, session: Session) -> tuple[Any, ...]:
    """The active table's row id, version and checksum (SQLite may give a new table the id
    and version of one deleted), and every team's (id, updated_at): not their maximum, as
    a change committed by another process may carry an older time than one already seen."""
    table_id, version, digest, teams_seen = session.execute(_STAMP).one()
    return table_id, version, digest, frozenset((teams_seen or "").split(","))


def _active_column(column: Any) -> Any:
    return select(column).where(RoutingTable.active).scalar_subquery()


_STAMP = select(
    _active_column(RoutingTable.id),
    _active_column(RoutingTable.version),
    _active_column(RoutingTable.checksum),
    select(
        func.aggregate_strings(cast(Team.id, String) + "@" + cast(Team.updated_at, String), ",")
    ).scalar_subquery(),
)


def load_table(*, session: Session, version: int | None) -> LoadedTable:
    """A stored version (the active one if None), ready to match."""
    row = _row(session=session, version=version)
    team_rows = {team.id: team for team in teams.list_teams(session=session)}
    slugs = {team_id: team.slug for team_id, team in team_rows.items()}
    rules = [_rule_spec(rule, slugs) for rule in row.rules]
    used = {r.team for r in rules if r.team is not None and r.when.business_hours is not None}
    return LoadedTable(
        version=row.version,
        rules=rules,
        rule_ids=[rule.id for rule in row.rules],
        team_ids={slug: team_id for team_id, slug in slugs.items()},
        calendars={
            team.slug: teams.calendar_of(team) for team in team_rows.values() if team.slug in used
        },
        team_terms=_terms(team_rows),
    )


def _terms(team_rows: dict[int, Team]) -> dict[int, teams.TeamTerms]:
    """The terms of each team whose row gives them. One that does not (hours or a policy that
    no longer parse, a time zone this machine lacks) is left out and logged: its tickets read
    its row where they open, and fail there, alone. (A team named by a rule's business-hours
    condition still fails the table's loading, through its calendar.)"""
    terms = {}
    for team_id, team in team_rows.items():
        try:
            terms[team_id] = teams.terms_of(team)
        except (ValueError, KeyError) as error:  # ZoneInfoNotFoundError is a KeyError
            log.warning("team %s: its hours or SLA policy do not parse: %r", team.slug, error)
    return terms


def _rule_spec(rule: RoutingRule, slugs: dict[int, str]) -> RuleSpec:
    return RuleSpec(
        name=rule.name,
        when=rule.conditions,
        team=slugs[rule.team_id] if rule.team_id is not None else None,
        priority=rule.priority,
        tags=rule.tags.get("tags", []),
    )


def route(table: LoadedTable, facts: MentionFacts) -> Route:
    """The route the first matching rule gives."""
    position = matching.first_match(
        table.rules, facts, table.is_open, table.positions_for(facts.label)
    )
    return _route_of(table, position)


def _route_of(table: LoadedTable, position: int) -> Route:
    rule = table.rules[position]
    return Route(
        table_version=table.version,
        rule_id=table.rule_ids[position],
        rule_name=rule.name,
        team=rule.team,
        team_id=table.team_ids[rule.team] if rule.team else None,
        priority=rule.priority,
        tags=tuple(rule.tags),
    )


def explain(table: LoadedTable, facts: MentionFacts) -> Explanation:
    """The rule these facts hit, and why every rule before it did not match."""
    position, tried = matching.explain(table.rules, facts, table.is_open)
    rule = table.rules[position]
    return Explanation(
        table_version=table.version,
        rule=rule.name,
        team=rule.team,
        priority=rule.priority,
        tags=rule.tags,
        tried=tried,
    )


def record_decision(
    *, session: Session, mention_id: int, route: Route, ticket_id: int | None, team_id: int | None
) -> RoutingDecision:
    """Store why and where a mention was routed (team_id: the team of the ticket it went to)."""
    decision = RoutingDecision(
        mention_id=mention_id,
        table_version=route.table_version,
        rule_id=route.rule_id,
        rule_name=route.rule_name,
        team_id=team_id,
        priority=route.priority,
        ticket_id=ticket_id,
    )
    session.add(decision)
    return decision


def has_active_table(*, session: Session) -> bool:
    return _active_row(session=session) is not None


def read_table(*, session: Session, version: int | None) -> TableRead:
    row = _row(session=session, version=version)
    slugs = {team.id: team.slug for team in teams.list_teams(session=session)}
    return TableRead(
        rules=[_rule_spec(rule, slugs) for rule in row.rules],
        version=row.version,
        active=row.active,
        source=row.source,
        created_at=row.created_at,
    )


def list_versions(*, session: Session) -> Sequence[VersionRead]:
    """Every stored version, newest first."""
    counts = (
        select(RoutingRule.table_id, func.count().label("rules"))
        .group_by(RoutingRule.table_id)
        .subquery()
    )
    query = (
        select(
            RoutingTable.version,
            RoutingTable.active,
            RoutingTable.source,
            RoutingTable.checksum,
            counts.c.rules,
            RoutingTable.created_at,
        )
        .join(counts, counts.c.table_id == RoutingTable.id)
        .order_by(RoutingTable.version.desc())
    )
    return [VersionRead.model_validate(row, from_attributes=True) for row in session.execute(query)]
