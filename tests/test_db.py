"""JSON columns are written by orjson, with json for what orjson refuses; the change locks."""

import json

import pytest
from sqlalchemy import Engine, func, select, text

from app.db import dump_json, make_sessionmaker, one_at_a_time
from tests.conftest import POSTGRES_URL


def test_json_columns_read_back_as_json_writes_them() -> None:
    value = {"label": "delay", "probabilities": {"delay": 0.912345, "other": 1e-06}, "tags": []}
    assert json.loads(dump_json(value)) == value


def test_integer_keys_become_strings_as_with_json() -> None:
    assert json.loads(dump_json({1: "a"})) == json.loads(json.dumps({1: "a"}))


def test_an_integer_past_64_bits_still_goes_through() -> None:
    assert json.loads(dump_json({"id": 2**70})) == {"id": 2**70}


@pytest.mark.skipif(not POSTGRES_URL, reason="advisory locks are PostgreSQL's")
def test_a_change_lock_leaves_the_transactions_own_lock_timeout_as_it_was(engine: Engine) -> None:
    with make_sessionmaker(engine)() as session, session.begin():
        session.execute(text("SET LOCAL lock_timeout = '1234ms'"))

        one_at_a_time(session, 0x7E57)

        setting = session.execute(select(func.current_setting("lock_timeout"))).scalar_one()
        assert setting == "1234ms"
