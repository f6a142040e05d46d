"""Load a configuration file (YAML or JSON) into the database."""

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.configuration.schemas import ConfigFile
from app.errors import InvalidConfiguration
from app.routing import service as routing
from app.teams import service as teams

DEFAULT_CONFIG = Path(__file__).parent / "default.yaml"


@dataclass(frozen=True)
class Applied:
    accounts: int
    teams: int
    routing_version: int | None
    routing_changed: bool


def read_file(path: Path) -> ConfigFile:
    """Parse and validate a configuration file; every problem is reported with its location."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise InvalidConfiguration(f"cannot read {path}: {error}") from error
    try:
        return ConfigFile.model_validate(document or {})
    except ValidationError as error:
        details = [
            {"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors(include_input=False)
        ]
        raise InvalidConfiguration(
            f"{path} is not a valid configuration", details=details
        ) from error


def apply(*, session: Session, config: ConfigFile, source: str) -> Applied:
    """Upsert teams and accounts, then store the routing table as a new version if it changed."""
    for team_in in config.teams:
        teams.upsert(session=session, team_in=team_in)
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
