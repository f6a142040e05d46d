"""Watched accounts: register, list, look up by handle."""

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.models import Account
from app.accounts.schemas import AccountCreate, AccountUpdate, normalise_handle
from app.errors import Conflict, InvalidInput, NotFound, UnknownAccount


def list_accounts(*, session: Session) -> Sequence[Account]:
    return session.scalars(select(Account).order_by(Account.id)).all()


def by_handles(*, session: Session, handles: Iterable[str]) -> dict[str, Account]:
    """The accounts among these handles, keyed by normalised handle."""
    wanted = {normalise_handle(handle) for handle in handles}
    rows = session.scalars(select(Account).where(Account.handle.in_(wanted))).all()
    return {account.handle: account for account in rows}


def get(*, session: Session, handle: str) -> Account:
    """A watched account by handle; an unknown one is a 422 (it is named in a request body)."""
    account = by_handles(session=session, handles=[handle]).get(handle)
    if account is None:
        raise UnknownAccount(f"@{handle} is not a watched account", details={"account": handle})
    return account


def create(*, session: Session, account_in: AccountCreate) -> Account:
    """Register a new watched account; a handle or X user id already watched is a conflict."""
    if by_handles(session=session, handles=[account_in.handle]):
        raise Conflict(
            f"account @{account_in.handle} is already registered",
            details={"handle": account_in.handle},
        )
    if account_in.x_user_id and _by_x_user_id(session=session, x_user_id=account_in.x_user_id):
        raise Conflict(
            "another account has this X user id", details={"x_user_id": account_in.x_user_id}
        )
    account = Account(**account_in.model_dump())
    try:
        with session.begin_nested():  # a concurrent registration of the same handle loses here
            session.add(account)
            session.flush()
    except IntegrityError as error:
        raise Conflict(f"account @{account_in.handle} is already registered") from error
    return account


def upsert(*, session: Session, account_in: AccountCreate) -> Account:
    """Create the account, or update the one with this handle (configuration files use this)."""
    account = by_handles(session=session, handles=[account_in.handle]).get(account_in.handle)
    if account is None:
        return create(session=session, account_in=account_in)
    if account_in.x_user_id:
        holder = _by_x_user_id(session=session, x_user_id=account_in.x_user_id)
        if holder is not None and holder.id != account.id:
            raise Conflict(
                "another account has this X user id", details={"x_user_id": account_in.x_user_id}
            )
    for field, value in account_in.model_dump(exclude={"handle"}).items():
        setattr(account, field, value)
    session.flush()
    return account


def update(*, session: Session, handle: str, change: AccountUpdate) -> Account:
    """Change the fields given; a kind or display name cannot be cleared."""
    account = session.scalars(
        select(Account).where(Account.handle == normalise_handle(handle)).with_for_update()
    ).first()
    if account is None:
        raise NotFound(f"@{handle} is not a watched account", details={"account": handle})
    fields = change.model_dump(exclude_unset=True)
    for required in ("kind", "display_name"):
        if required in fields and fields[required] is None:
            raise InvalidInput(f"{required} cannot be null", details={"field": required})
    if fields.get("x_user_id"):
        holder = _by_x_user_id(session=session, x_user_id=fields["x_user_id"])
        if holder is not None and holder.id != account.id:
            raise Conflict(
                "another account has this X user id", details={"x_user_id": fields["x_user_id"]}
            )
    if "search_terms" in fields and fields["search_terms"] is None:
        fields["search_terms"] = []
    for field, value in fields.items():
        setattr(account, field, value)
    session.flush()
    return account


def _by_x_user_id(*, session: Session, x_user_id: str) -> Account | None:
    return session.scalars(select(Account).where(Account.x_user_id == x_user_id)).first()
