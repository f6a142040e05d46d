"""JSON columns are written by orjson, with json for what orjson refuses."""

import json

from app.db import dump_json


def test_json_columns_read_back_as_json_writes_them() -> None:
    value = {"label": "delay", "probabilities": {"delay": 0.912345, "other": 1e-06}, "tags": []}
    assert json.loads(dump_json(value)) == value


def test_integer_keys_become_strings_as_with_json() -> None:
    assert json.loads(dump_json({1: "a"})) == json.loads(json.dumps({1: "a"}))


def test_an_integer_past_64_bits_still_goes_through() -> None:
    assert json.loads(dump_json({"id": 2**70})) == {"id": 2**70}
