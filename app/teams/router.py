"""HTTP routes of teams."""

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from app.db import get_read_session
from app.teams import service
from app.teams.schemas import TeamRead

router = APIRouter(prefix="/v1/teams", tags=["teams"])


@router.get("")
def list_teams(session: Annotated[Session, Depends(get_read_session)]) -> list[TeamRead]:
    """Every team that can own a queue."""
    return [TeamRead.model_validate(t) for t in service.list_teams(session=session)]
