"""Helpers for tests that revoke keys the running app has already checked."""

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.access.cache import KeyCache


def expire_cached_keys(client: TestClient) -> None:
    """What `key_cache_seconds` passing does to the app: every key is read again."""
    app: FastAPI = client.app  # type: ignore[assignment]
    app.state.keys = KeyCache(app.state.settings.key_cache_seconds)
