"""The FastAPI application: settings, database, model, routes."""

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app import __doc__ as description
from app import checkpoints, heap
from app.access.cache import KeyCache
from app.accounts.router import router as accounts_router
from app.classify import serving
from app.classify.router import router as classify_router
from app.classify.service import Classifier
from app.config import Settings, get_settings
from app.db import make_engine, make_sessionmaker
from app.delivery import ssrf
from app.delivery.router import router as delivery_router
from app.http import BodySizeLimit, install_error_handlers
from app.ingest import batcher
from app.ingest.router import router as ingest_router
from app.routing.router import router as routing_router
from app.teams.router import router as teams_router
from app.tickets.router import queues as queues_router
from app.tickets.router import router as tickets_router
from app.worker import service as worker
from app.x.router import router as x_router
from app.x.router import ticket_replies as x_replies_router

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    classifier: Classifier | None = None,
    *,
    with_worker: bool = True,
) -> FastAPI:
    """Build the application; the engine and (unless given) the model are made when it starts.

    On SQLite the background worker runs in-process unless `with_worker` is false (tests drive
    it themselves) or the `worker_in_process` setting says otherwise.
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings, background_checkpoints=True)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.read_sessionmaker = make_sessionmaker(engine, read_only=True)
        app.state.keys = KeyCache(settings.key_cache_seconds)
        app.state.resolver = ssrf.system_resolver  # tests put a resolver of their own here
        app.state.classifier = serving.at_start(
            sessions=app.state.sessionmaker, settings=settings, given=classifier
        )
        log.info("serving model %s", app.state.classifier.version)
        # Stopped however the start ends: a step that fails must not leave threads running.
        background: list[tuple[threading.Thread, threading.Event]] = []
        ingest_batcher: batcher.Batcher | None = None
        try:
            background.append(
                serving.start_following(
                    state=app.state, sessions=app.state.sessionmaker, settings=settings
                )
            )
            every = settings.sqlite_checkpoint_seconds
            checkpointing = checkpoints.start(engine, every_seconds=every)
            if checkpointing is not None:
                background.append(checkpointing)
            in_process = settings.worker_in_process
            if in_process is None:
                in_process = settings.is_sqlite and with_worker
            if in_process:
                background.extend(
                    worker.start_threads(
                        sessions=app.state.sessionmaker, settings=settings, models=app.state
                    )
                )
            ingest_batcher = app.state.batcher = batcher.for_app(app.state, settings)
            ingest_batcher.start()
            heap.settle()
            yield
        finally:
            if ingest_batcher is not None:
                await ingest_batcher.stop()
            for _, stop in background:
                stop.set()
            for thread, _ in background:
                thread.join(timeout=30)
            engine.dispose()

    app = FastAPI(title="Aiguilleur", description=description, version="0.1.0", lifespan=lifespan)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    # Ingest first: a request is matched against the routes in order, and posts are most of
    # the traffic (matched after the 30 routes of the others, a post took 30 µs more).
    routers = (
        ingest_router,
        accounts_router,
        classify_router,
        delivery_router,
        queues_router,
        routing_router,
        teams_router,
        tickets_router,
        x_router,
        x_replies_router,
    )
    for router in routers:
        app.include_router(router)
    app.add_api_route("/health", health, methods=["GET"], tags=["health"])
    app.add_api_route("/ready", ready, methods=["GET"], tags=["health"])
    return app


async def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def ready(request: Request) -> JSONResponse:
    """The database answers and the model is loaded; 503 otherwise."""
    checks: dict[str, Any] = {}
    try:
        with request.app.state.read_sessionmaker() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as error:
        checks["database"] = f"unavailable: {type(error).__name__}"
    classifier = getattr(request.app.state, "classifier", None)
    checks["model"] = classifier.version if classifier else "not loaded"
    ok = checks["database"] == "ok" and classifier is not None
    return JSONResponse(
        {"status": "ready" if ok else "not_ready", **checks}, status_code=200 if ok else 503
    )
