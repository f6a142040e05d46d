"""HTTP routes of watched accounts."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status
from sqlalchemy.orm import Session

from app.access.dependencies import Admin, Caller
from app.accounts import service
from app.accounts.schemas import AccountCreate, AccountRead, AccountUpdate
from app.db import get_read_session, get_session

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])
SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]


@router.get("")
def list_accounts(session: ReadSessionDep, caller: Caller) -> list[AccountRead]:
    """The watched accounts: the company's and its executives'."""
    return [AccountRead.model_validate(a) for a in service.list_accounts(session=session)]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_account(account_in: AccountCreate, session: SessionDep, admin: Admin) -> AccountRead:
    """Register a watched account (company or executive); admin only."""
    account = service.create(session=session, account_in=account_in)
    session.commit()
    return AccountRead.model_validate(account)


@router.patch("/{handle}")
def update_account(
    handle: Annotated[str, Path(max_length=65, pattern=r"^@?[A-Za-z0-9_]{1,64}$")],
    change: AccountUpdate,
    session: SessionDep,
    admin: Admin,
) -> AccountRead:
    """Change a watched account: its X user id, search terms, poll interval...; admin only."""
    account = service.update(session=session, handle=handle, change=change)
    session.commit()
    return AccountRead.model_validate(account)
