"""Teams: look up and declare."""

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.teams.models import Team
from app.teams.schemas import TeamSpec


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


def upsert(*, session: Session, team_in: TeamSpec) -> Team:
    """Create the team, or rename the one with this slug."""
    team = by_slugs(session=session, slugs=[team_in.slug]).get(team_in.slug)
    if team is None:
        team = Team(slug=team_in.slug, name=team_in.name)
        session.add(team)
    else:
        team.name = team_in.name
    session.flush()
    return team
