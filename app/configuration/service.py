"""Load a configuration file (YAML or JSON) into the database."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.configuration.schemas import ConfigFile
from app.errors import InvalidConfiguration
from app.routing import service as routing
from app.routing.schemas import TableSpec
from app.teams import service as teams

DEFAULT_CONFIG = Path(__file__).parent / "default.yaml"
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Applied:
    accounts: int
    teams: int
    routing_version: int | None
    routing_changed: bool


def _document(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise InvalidConfiguration(f"cannot read {path}: {error}") from error


def _validated(model: type[M], document: Any, path: Path, what: str) -> M:
    try:
        return model.model_validate(document or {})
    except ValidationError as error:
        details = [
            {"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors(include_input=False)
        ]
        raise InvalidConfiguration(f"{path} is not a valid {what}", details=details) from error


def read_file(path: Path) -> ConfigFile:
    """Parse and validate a configuration file; every problem is reported with its location."""
    return _validated(ConfigFile, _document(path), path, "configuration")


def read_routing_file(path: Path) -> TableSpec:
    """A routing table file: its `rules`, alone or under `routing:` in a configuration file."""
    document = _document(path)
    if isinstance(document, dict) and "routing" in document:
        document = document["routing"]
    return _validated(TableSpec, document, path, "routing table")


def apply(*, session: Session, config: ConfigFile, source: str) -> Applied:
    """Upsert teams and accounts, then store the routing table as a new version if it changed."""
    for team_in in config.teams:
        teams.upsert(session=session, slug=team_in.slug, team_in=team_in)
    teams.check_escalations(session=session)
    for account_in in config.accounts:
        accounts.upsert(session=session, account_in=account_in)
    version, changed = None, False
    if config.routing is not None:
        table, changed = routing.apply_table(session=session, spec=config.routing, source=source)
        version = table.version
    return Applied(len(config.accounts), len(config.teams), version, changed)


def apply_defaults_if_empty(*, session: Session) -> Applied | None:
    """On a new database with no routing table, install the shipped teams and table."""
    if routing.has_active_table(session=session):
        return None
    return apply(session=session, config=read_file(DEFAULT_CONFIG), source="default")
