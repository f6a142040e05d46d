"""Which model this process serves: the active version at start, and any later switch.

A switch made through this process takes effect at once; one made elsewhere (another API
process, `aiguilleur models activate`) is picked up by a thread that reads the active version
every `model_refresh_seconds`. A version that cannot be loaded is refused and the running model
keeps serving.
"""

import logging
import threading
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.classify import registry
from app.classify.service import Classifier
from app.config import Settings
from app.db import READ_ONLY
from app.errors import InvalidModel
from ml.model import TextClassifier

log = logging.getLogger(__name__)
SYSTEM_ACTOR = "system:start"


def classifier_for(model: TextClassifier, settings: Settings) -> Classifier:
    return Classifier(model, threshold=settings.confidence_threshold, margin=settings.triage_margin)


def at_start(
    *, sessions: sessionmaker[Session], settings: Settings, given: Classifier | None
) -> Classifier:
    """The active registered version; on a database without one, the configured model becomes
    the first registered and active version. The model loads outside any transaction: on
    SQLite, holding the write lock meanwhile would stall every other process's writes."""
    try:
        served = _active(sessions=sessions, settings=settings, given=given)
        if served is not None:
            return served
        classifier = given or _configured(settings)
        with sessions() as session, session.begin():
            registry.lock_changes(session=session)
            winner = registry.active(session=session)
            if winner is None:
                row = registry.register(
                    session=session, model=classifier.model, directory=settings.model_path
                )
                registry.activate(session=session, row=row, actor=SYSTEM_ACTOR)
                return classifier
        # Another process registered and activated a version since our first look: serve it.
        return _active(sessions=sessions, settings=settings, given=classifier) or classifier
    except OperationalError as error:
        log.error("database unavailable at start (%s): serving the configured model", error.orig)
        return given or _configured(settings)


def _active(
    *, sessions: sessionmaker[Session], settings: Settings, given: Classifier | None
) -> Classifier | None:
    """The active version's classifier, `given` if it is that version, the configured model if
    the active version cannot be loaded; None without an active version."""
    with sessions() as session:
        session.connection(execution_options={READ_ONLY: True})
        row = registry.active(session=session)
    if row is None:
        return None
    if given is not None and given.version == row.version:
        return given
    try:
        return classifier_for(registry.load(row), settings)
    except InvalidModel as error:
        log.error("active model %s cannot be loaded: %s", row.version, error.message)
        return given or _configured(settings)


def _configured(settings: Settings) -> Classifier:
    return classifier_for(TextClassifier.load(settings.model_path), settings)


def follow_active(
    *, state: Any, sessions: sessionmaker[Session], settings: Settings, stop: threading.Event
) -> None:
    """Until stopped: when the active version is not the one served, load it and swap."""
    while not stop.wait(settings.model_refresh_seconds):
        try:
            with sessions() as session:
                row = registry.active(session=session)
                if row is None or row.version == state.classifier.version:
                    continue
                state.classifier = classifier_for(registry.load(row), settings)
            log.info("now serving model %s", row.version)
        except InvalidModel as error:
            log.error("the active model cannot be loaded, keeping %s: %s", _serving(state), error)
        except OperationalError as error:
            log.warning("cannot read the active model version: %s", type(error.orig).__name__)


def _serving(state: Any) -> str:
    return str(state.classifier.version)


def start_following(
    *, state: Any, sessions: sessionmaker[Session], settings: Settings
) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=follow_active,
        kwargs={"state": state, "sessions": sessions, "settings": settings, "stop": stop},
        name="aiguilleur-model",
        daemon=True,
    )
    thread.start()
    return thread, stop
