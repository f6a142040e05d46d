"""JSON columns are written by orjson, with json for what orjson refuses; timestamps are stored
in UTC; the change locks."""

import json
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import DateTime, Engine, func, literal, select, text
from sqlalchemy.dialects import sqlite

from app.db import UTCDateTime, dump_json, make_sessionmaker, one_at_a_time
from tests.conftest import POSTGRES_URL


def test_json_columns_read_back_as_json_writes_them() -> None:
    value = {"label": "delay", "probabilities": {"delay": 0.912345, "other": 1e-06}, "tags": []}
    assert json.loads(dump_json(value)) == value


def test_integer_keys_become_strings_as_with_json() -> None:
    assert json.loads(dump_json({1: "a"})) == json.loads(json.dumps({1: "a"}))


def test_an_integer_past_64_bits_still_goes_through() -> None:
    assert json.loads(dump_json({"id": 2**70})) == {"id": 2**70}


PARIS_WINTER = timezone(timedelta(hours=1))
INSTANTS = [
    datetime(2026, 12, 7, 8, 15, 0, tzinfo=PARIS_WINTER),  # no microseconds: still written
    datetime(2026, 12, 7, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),  # a year of one digit, padded to four
    datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
]


@pytest.mark.parametrize("instant", INSTANTS)
def test_sqlite_timestamps_are_the_text_sqlalchemy_writes_in_utc(instant: datetime) -> None:
    dialect = sqlite.dialect()
    ours = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    sqlalchemys = DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert ours is not None
    assert sqlalchemys is not None

    assert ours(instant) == sqlalchemys(instant.astimezone(UTC))


def test_an_instant_binds_to_its_own_text_whatever_was_bound_before() -> None:
    """The texts are remembered; two datetimes that compare equal but are different instants
    (the two 02:30 of the night clocks go back: Python compares them on the wall clock) must
    not share one."""
    dialect = sqlite.dialect()
    bind = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert bind is not None
    first = datetime(2026, 10, 25, 2, 30, tzinfo=ZoneInfo("Europe/Paris"))
    second = first.replace(fold=1)

    assert (bind(first), bind(second)) == (
        "2026-10-25 00:30:00.000000",
        "2026-10-25 01:30:00.000000",
    )
    assert bind(first.astimezone(PARIS_WINTER)) == bind(first)  # one instant, one text


def test_a_naive_timestamp_is_refused_on_sqlite_too() -> None:
    dialect = sqlite.dialect()
    bind = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert bind is not None

    with pytest.raises(ValueError, match="naive"):
        bind(datetime(2026, 12, 7, 8, 15))  # naive: the case under test
    assert bind(None) is None


@pytest.mark.parametrize("instant", INSTANTS)
def test_a_timestamp_reads_back_as_the_same_instant_in_utc(
    engine: Engine, instant: datetime
) -> None:
    with engine.connect() as connection:
        stored = connection.execute(select(literal(instant, UTCDateTime()))).scalar_one()
    assert stored == instant
    assert stored.tzinfo == UTC


@pytest.mark.skipif(not POSTGRES_URL, reason="advisory locks are PostgreSQL's")
def test_a_change_lock_leaves_the_transactions_own_lock_timeout_as_it_was(engine: Engine) -> None:
    with make_sessionmaker(engine)() as session, session.begin():
        session.execute(text("SET LOCAL lock_timeout = '1234ms'"))

        one_at_a_time(session, 0x7E57)

        setting = session.execute(select(func.current_setting("lock_timeout"))).scalar_one()
        assert setting == "1234ms"
