"""Routing tables: store a new version, load the active one, route a mention, record why."""

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.errors import InvalidConfiguration, NoRoutingTable
from app.routing.models import RoutingDecision, RoutingRule, RoutingTable
from app.routing.rules import MentionFacts, first_match
from app.routing.schemas import RuleSpec, TableSpec
from app.teams import service as teams
from app.teams.models import Team


@dataclass(frozen=True)
class ActiveTable:
    """The active table, ready to match: rules in order with their row ids and team ids."""

    version: int
    rules: list[RuleSpec]
    rule_ids: list[int]
    team_ids: dict[str, int]


@dataclass(frozen=True)
class Route:
    """Where one mention goes, and which rule of which table version said so."""

    table_version: int
    rule_id: int
    rule_name: str
    team: str | None
    team_id: int | None
    priority: str | None


def checksum(spec: TableSpec) -> str:
    canonical = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def apply_table(*, session: Session, spec: TableSpec, source: str) -> tuple[RoutingTable, bool]:
    """Store the table as the new active version, unless it is the active one already."""
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


def _teams_of(*, session: Session, spec: TableSpec) -> dict[str, Team]:
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


def active_table(*, session: Session) -> ActiveTable:
    """The active routing table; without one nothing can be routed, which is a setup error."""
    row = _active_row(session=session)
    if row is None:
        raise NoRoutingTable("no routing table is active: apply a configuration first")
    slugs = {team.id: team.slug for team in teams.list_teams(session=session)}
    rules = [
        RuleSpec(
            name=rule.name,
            when=rule.conditions,
            team=slugs[rule.team_id] if rule.team_id is not None else None,
            priority=rule.priority,
            tags=rule.tags.get("tags", []),
        )
        for rule in row.rules
    ]
    return ActiveTable(
        version=row.version,
        rules=rules,
        rule_ids=[rule.id for rule in row.rules],
        team_ids={slug: team_id for team_id, slug in slugs.items()},
    )


def route(table: ActiveTable, facts: MentionFacts) -> Route:
    """The route the first matching rule gives."""
    position = first_match(table.rules, facts)
    rule = table.rules[position]
    return Route(
        table_version=table.version,
        rule_id=table.rule_ids[position],
        rule_name=rule.name,
        team=rule.team,
        team_id=table.team_ids[rule.team] if rule.team else None,
        priority=rule.priority,
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
