"""Teams: look up, declare, and read their hours and SLA policy."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import InvalidConfiguration, NotFound
from app.teams.calendar import ALWAYS_OPEN, BusinessHoursSpec, Calendar
from app.teams.models import Team
from app.teams.schemas import SlaPolicy, TeamUpdate


def list_teams(*, session: Session) -> Sequence[Team]:
    return session.scalars(select(Team).order_by(Team.slug)).all()


def by_slugs(*, session: Session, slugs: Iterable[str]) -> dict[str, Team]:
    rows = session.scalars(select(Team).where(Team.slug.in_(set(slugs)))).all()
    return {team.slug: team for team in rows}


def get(*, session: Session, slug: str) -> Team:
    team = by_slugs(session=session, slugs=[slug]).get(slug)
    if team is None:
        raise NotFound(f"no team {slug!r}", details={"team": slug})
    return team


def slug_of(*, session: Session, team_id: int) -> str | None:
    team = session.get(Team, team_id)
    return team.slug if team else None


def visible(*, session: Session, slug: str, teams: frozenset[str] | None) -> Team:
    """A team the caller works (None: every team); any other is not found, like a missing one."""
    if teams is not None and slug not in teams:
        raise NotFound(f"no team {slug!r}", details={"team": slug})
    return get(session=session, slug=slug)


def upsert(*, session: Session, slug: str, team_in: TeamUpdate) -> Team:
    """Create the team, or replace everything but the slug of the one that has it."""
    if team_in.sla.escalation.team == slug:
        raise InvalidConfiguration(f"team {slug!r} cannot escalate to itself")
    team = by_slugs(session=session, slugs=[slug]).get(slug)
    if team is None:
        team = Team(slug=slug)
        session.add(team)
    team.name = team_in.name
    team.members = list(dict.fromkeys(team_in.members))
    team.hours = team_in.hours.model_dump(mode="json") if team_in.hours else None
    team.sla = team_in.sla.model_dump(mode="json")
    session.flush()
    return team


def check_escalations(*, session: Session) -> None:
    """Every escalation names a team that exists (checked once all teams of a change are in)."""
    teams = list_teams(session=session)
    known = {team.slug for team in teams}
    unknown = {
        team.slug: target
        for team in teams
        if (target := policy_of(team).escalation.team) is not None and target not in known
    }
    if unknown:
        raise InvalidConfiguration(
            "teams escalate to teams that do not exist", details={"escalations": unknown}
        )


def policy_of(team: Team) -> SlaPolicy:
    return SlaPolicy.model_validate(team.sla or {})


def calendar_of(team: Team) -> Calendar:
    """The team's business hours; a team without hours is always open."""
    if team.hours is None:
        return ALWAYS_OPEN
    return Calendar.from_spec(BusinessHoursSpec.model_validate(team.hours))


def sla_clock(team: Team) -> Calendar:
    """What SLA deadlines count in: business hours if the policy says so, else calendar time."""
    return terms_of(team).clock


@dataclass(frozen=True)
class TeamTerms:
    """What a new ticket needs of its team, read once: its names, its SLA policy and the clock
    its deadlines count in (reading the policy and building the calendar from the team's row
    cost more than computing the deadlines)."""

    id: int
    slug: str
    policy: SlaPolicy
    clock: Calendar


def terms_of(team: Team) -> TeamTerms:
    policy = policy_of(team)
    clock = calendar_of(team) if policy.business_time else ALWAYS_OPEN
    return TeamTerms(id=team.id, slug=team.slug, policy=policy, clock=clock)
