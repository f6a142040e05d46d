"""HTTP routes of teams: list and read them (any key), declare or change one (admin)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from sqlalchemy.orm import Session

from app.access.dependencies import Admin, Caller
from app.db import get_read_session, get_session
from app.teams import service
from app.teams.schemas import TeamRead, TeamUpdate

router = APIRouter(prefix="/v1/teams", tags=["teams"])
ReadSessionDep = Annotated[Session, Depends(get_read_session)]
SessionDep = Annotated[Session, Depends(get_session)]
TeamSlug = Annotated[str, Path(max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]


@router.get("")
def list_teams(session: ReadSessionDep, caller: Caller) -> list[TeamRead]:
    """Every team that can own a queue."""
    return [TeamRead.model_validate(t) for t in service.list_teams(session=session)]


@router.get("/{team}")
def get_team(team: TeamSlug, session: ReadSessionDep, caller: Caller) -> TeamRead:
    """One team: members, business hours and SLA policy."""
    return TeamRead.model_validate(service.get(session=session, slug=team))


@router.put("/{team}")
def put_team(team: TeamSlug, team_in: TeamUpdate, session: SessionDep, admin: Admin) -> TeamRead:
    """Create the team or replace its settings; open tickets keep the deadlines they have."""
    row = service.upsert(session=session, slug=team, team_in=team_in)
    service.check_escalations(session=session)
    session.commit()
    return TeamRead.model_validate(row)
