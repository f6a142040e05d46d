"""`aiguilleur accounts list|set`: the watched accounts from the command line."""

import argparse

from sqlalchemy.orm import Session

from app.accounts import service
from app.accounts.models import AccountKind
from app.accounts.schemas import AccountCreate, AccountRead, AccountUpdate, normalise_handle
from app.config import Settings
from app.db import in_transaction


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    accounts = commands.add_parser("accounts", help="watched accounts (the company's, the CEO's)")
    actions = accounts.add_subparsers(required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the watched accounts")
    listing.set_defaults(handler=list_accounts)
    change = actions.add_parser("set", help="register an account, or change the fields given")
    change.add_argument("handle")
    change.add_argument("--kind", choices=[k.value for k in AccountKind])
    change.add_argument("--display-name")
    change.add_argument("--x-user-id", help="the account's numeric X user id")
    change.add_argument(
        "--search-term",
        action="append",
        dest="search_terms",
        metavar="TERM",
        help="a word or phrase naming the account without a tag (repeatable; replaces the list)",
    )
    change.add_argument("--no-search", action="store_true", help="clear the search terms")
    change.add_argument("--poll-interval", type=int, dest="poll_interval_seconds", metavar="S")
    change.set_defaults(handler=set_account)


def list_accounts(args: argparse.Namespace, settings: Settings) -> int:
    def read(session: Session) -> list[AccountRead]:
        return [AccountRead.model_validate(a) for a in service.list_accounts(session=session)]

    for account in in_transaction(settings, read):
        terms = ", ".join(account.search_terms) or "-"
        every = account.poll_interval_seconds or settings.x_poll_interval_seconds
        print(
            f"@{account.handle} ({account.kind}) x_user_id={account.x_user_id or '-'} "
            f"search: {terms}; polled every {every} s"
        )
    return 0


def set_account(args: argparse.Namespace, settings: Settings) -> int:
    given = {
        field: getattr(args, field)
        for field in ("kind", "display_name", "x_user_id", "search_terms", "poll_interval_seconds")
        if getattr(args, field) is not None
    }
    if args.no_search:
        given["search_terms"] = []
    handle = normalise_handle(args.handle)

    def apply(session: Session) -> tuple[AccountRead, bool]:
        if service.by_handles(session=session, handles=[handle]):
            change = AccountUpdate.model_validate(given)
            return AccountRead.model_validate(
                service.update(session=session, handle=handle, change=change)
            ), False
        account_in = AccountCreate.model_validate(
            {"handle": handle, "display_name": handle, **given}
        )
        return AccountRead.model_validate(
            service.create(session=session, account_in=account_in)
        ), True

    account, created = in_transaction(settings, apply)
    print(f"@{account.handle} {'registered' if created else 'updated'}")
    return 0
