"""`aiguilleur keys create|list|revoke`, and the first admin key `serve` prints on SQLite."""

import argparse

from sqlalchemy.orm import Session

from app.access import service as access
from app.access.schemas import KeyCreate
from app.config import Settings
from app.db import in_transaction


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    keys = commands.add_parser("keys", help="API keys")
    actions = keys.add_subparsers(required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key; its secret is printed once")
    create.add_argument("--name", required=True, help="who or what uses the key")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        dest="scopes",
        help="ingest, queue:<team>, routing:write or admin (repeat for several)",
    )
    create.set_defaults(handler=create_key)
    listing = actions.add_parser("list", help="list keys (never their secrets)")
    listing.set_defaults(handler=list_keys)
    revoke = actions.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=revoke_key)


def create_key(args: argparse.Namespace, settings: Settings) -> int:
    key_in = KeyCreate(name=args.name, scopes=args.scopes)

    def create(session: Session) -> tuple[str, str]:
        key, token = access.create(session=session, key_in=key_in)
        return key.key_id, token

    key_id, token = in_transaction(settings, create)
    print(f"key {key_id} ({args.name}: {', '.join(sorted(set(args.scopes)))})")
    print(f"secret, shown this once: {token}")
    return 0


def list_keys(args: argparse.Namespace, settings: Settings) -> int:
    rows = in_transaction(
        settings,
        lambda session: [
            (k.key_id, k.name, " ".join(k.scopes), k.created_at, k.revoked_at)
            for k in access.list_keys(session=session)
        ],
    )
    for key_id, name, scopes, created_at, revoked_at in rows:
        state = f"revoked {revoked_at:%Y-%m-%d %H:%M}" if revoked_at else "active"
        print(f"{key_id}  {name:<24} {scopes:<40} created {created_at:%Y-%m-%d %H:%M}  {state}")
    return 0


def revoke_key(args: argparse.Namespace, settings: Settings) -> int:
    name = in_transaction(
        settings, lambda session: access.revoke(session=session, key_id=args.key_id).name
    )
    print(f"revoked key {args.key_id} ({name})")
    return 0


def print_first_admin_key(settings: Settings) -> None:
    """On the embedded default, a database without keys gets an admin key, printed this once."""

    def create(session: Session) -> str | None:
        if access.has_any(session=session):
            return None
        _, token = access.create(
            session=session, key_in=KeyCreate(name="first-admin", scopes=["admin"])
        )
        return token

    token = in_transaction(settings, create)
    if token is not None:
        print(f"first admin API key (shown once, keep it): {token}", flush=True)
