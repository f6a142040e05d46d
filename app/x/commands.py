"""`aiguilleur x check|status|backfill|stream`: X from the command line."""

import argparse
import signal
import threading
from datetime import UTC, datetime

from sqlalchemy import select

from app.accounts.models import Account
from app.config import Settings
from app.db import make_engine, make_sessionmaker, utcnow
from app.errors import InvalidInput
from app.worker.commands import following

# tweepy and the model's code load in seconds: each command imports what it uses, so that every
# other `aiguilleur` command starts fast.

USERS_PER_LOOKUP = 100  # X's most usernames in one lookup


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    x = commands.add_parser("x", help="X (Twitter): credentials, pollers, backfill, stream")
    actions = x.add_subparsers(required=True, metavar="ACTION")
    check = actions.add_parser(
        "check", help="verify the credentials and which watched accounts resolve on X"
    )
    check.set_defaults(handler=check_credentials)
    status = actions.add_parser("status", help="where each poller stands")
    status.set_defaults(handler=show_status)
    backfill = actions.add_parser("backfill", help="import recent posts once")
    backfill.add_argument(
        "--since", required=True, type=_moment, help="ISO 8601 time, e.g. 2026-11-20T00:00:00Z"
    )
    backfill.add_argument("--account", action="append", help="only this handle (repeatable)")
    backfill.set_defaults(handler=run_backfill)
    listen = actions.add_parser("stream", help="ingest from X's filtered stream until stopped")
    listen.add_argument(
        "--backfill-minutes",
        type=int,
        default=0,
        choices=range(6),
        metavar="0-5",
        help="posts X sends again after a reconnection (X's higher access tiers)",
    )
    listen.set_defaults(handler=run_stream)


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_credentials(args: argparse.Namespace, settings: Settings) -> int:
    """Which watched accounts X knows, under the ids configured; who replies go out as."""
    engine = make_engine(settings)
    try:
        with make_sessionmaker(engine)() as session:
            accounts = list(session.scalars(select(Account).order_by(Account.handle)))
    finally:
        engine.dispose()
    healthy = _check_reader(settings, accounts)
    return 0 if _check_writer(settings) and healthy else 1


def _check_reader(settings: Settings, accounts: list[Account]) -> bool:
    import tweepy

    from app.x import client as x_client

    if not settings.x_reads:
        print("read: not configured (AIGUILLEUR_X_BEARER_TOKEN)")
        return False
    reader = x_client.reader(settings)
    handles = [a.handle for a in accounts] or ["x"]
    found: dict[str, str] = {}
    try:
        for start in range(0, len(handles), USERS_PER_LOOKUP):
            answer = reader.get_users(
                usernames=handles[start : start + USERS_PER_LOOKUP], user_fields=["username"]
            )
            found |= {u["username"].lower(): u["id"] for u in answer.get("data") or []}
    except (tweepy.TweepyException, OSError) as error:
        print(f"read: refused: {x_client.describe(error)}")
        return False
    print("read: the bearer token works")
    healthy = True
    for account in accounts:
        x_id = found.get(account.handle)
        if x_id is None:
            verdict, healthy = "not found on X", False
        elif account.x_user_id is None:
            verdict = f"resolves to {x_id} (no x_user_id set: its mentions are not polled)"
        elif account.x_user_id != x_id:
            verdict, healthy = f"MISMATCH: X says {x_id}, configured {account.x_user_id}", False
        else:
            verdict = f"ok ({x_id})"
        print(f"  @{account.handle}: {verdict}")
    return healthy


def _check_writer(settings: Settings) -> bool:
    import tweepy

    from app.x import client as x_client

    if not settings.x_writes:
        print("reply: not configured (AIGUILLEUR_X_CONSUMER_KEY, ..._ACCESS_TOKEN_SECRET)")
        return False
    try:
        me = x_client.writer(settings).get_me(user_auth=True)
    except (tweepy.TweepyException, OSError) as error:
        print(f"reply: refused: {x_client.describe(error)}")
        return False
    user = me.get("data") or {}
    print(f"reply: replies go out as @{user.get('username')} ({user.get('id')})")
    return True


def show_status(args: argparse.Namespace, settings: Settings) -> int:
    from app.x import service

    engine = make_engine(settings)
    try:
        with make_sessionmaker(engine)() as session:
            rows = service.checkpoints(session=session)
            for checkpoint, handle in rows:
                place = checkpoint.since_id or f"from {checkpoint.start_time:%Y-%m-%d %H:%M}Z"
                paging = " (mid-sweep)" if checkpoint.pagination_token else ""
                error = f"; last error: {checkpoint.last_error}" if checkpoint.last_error else ""
                print(
                    f"@{handle} {checkpoint.channel}: after {place}{paging}, "
                    f"{checkpoint.posts_seen} posts seen, next at "
                    f"{checkpoint.next_poll_at:%Y-%m-%d %H:%M:%S}Z{error}"
                )
    finally:
        engine.dispose()
    if not rows:
        print("no checkpoints yet: the worker makes them for accounts with an X user id or terms")
    return 0


def run_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from app.x import client as x_client
    from app.x import polling

    if args.since > utcnow():
        raise InvalidInput("--since is in the future")
    engine = make_engine(settings)
    sessions = make_sessionmaker(engine)
    try:
        models = following(sessions=sessions, settings=settings, stop=threading.Event())
        created = polling.backfill(
            sessions=sessions,
            settings=settings,
            models=models,
            x=x_client.reader(settings),
            since=args.since,
            handles=args.account,
        )
    finally:
        engine.dispose()
    for what, count in created.items():
        print(f"{what}: {count} new mentions")
    return 0


def run_stream(args: argparse.Namespace, settings: Settings) -> int:
    from app.x import stream

    engine = make_engine(settings)
    sessions = make_sessionmaker(engine)
    stopped = threading.Event()
    try:
        models = following(sessions=sessions, settings=settings, stop=stopped)
        listener = stream.open_stream(settings=settings, sessions=sessions, models=models)

        def stop(*_: object) -> None:
            listener.disconnect()

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, stop)
        listener.filter(**stream.filter_options(args.backfill_minutes))
        print(f"stream stopped: {listener.ingested} new mentions")
    finally:
        stopped.set()
        engine.dispose()
    return 1 if listener.failed else 0
