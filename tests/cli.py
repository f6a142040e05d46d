"""Running `aiguilleur ARGS` inside the test process: the command's logic, without paying for a
new interpreter (imports, model) each time. A few tests still start the real entry point in a
child process (`tests.server.run_child_cli`)."""

import contextlib
import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator

from app import cli
from app.config import get_settings
from tests.server import ROOT


def run_cli(*args: str, database_url: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run `aiguilleur ARGS` as `app.cli.main` against the given database (and settings), as
    `tests.server.run_child_cli` does in a child: the same environment (only these AIGUILLEUR_*
    variables), working directory, exit status, standard output and standard error, logs
    included. An exception the command does not handle fails the test instead of becoming
    status 1."""
    out, err = io.StringIO(), io.StringIO()
    environment = {"AIGUILLEUR_DATABASE_URL": database_url, **settings}
    with (
        _only_these_settings(environment),
        _fresh_root_logger(),
        contextlib.chdir(ROOT),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            status = cli.main(list(args))
        except SystemExit as exit_:  # argparse's errors and --help
            status = _exit_status(exit_)
    return subprocess.CompletedProcess(list(args), status, out.getvalue(), err.getvalue())


def _exit_status(exit_: SystemExit) -> int:
    """What the interpreter makes of SystemExit: a message goes to standard error, status 1."""
    if exit_.code is None or isinstance(exit_.code, int):
        return exit_.code or 0
    print(exit_.code, file=sys.stderr)
    return 1


@contextlib.contextmanager
def _only_these_settings(environment: dict[str, str]) -> Iterator[None]:
    """The process environment with no AIGUILLEUR_* variable but these, and `get_settings`
    read afresh (it caches the first read for the process)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("AIGUILLEUR_")}
    for name in saved:
        del os.environ[name]
    os.environ.update(environment)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for name in environment:
            os.environ.pop(name, None)
        os.environ.update(saved)
        get_settings.cache_clear()


@contextlib.contextmanager
def _fresh_root_logger() -> Iterator[None]:
    """A root logger without handlers, as in a new process: the command's `basicConfig` then
    logs to the captured standard error, at its level. Restored afterwards (pytest's own)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers = []
    try:
        yield
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers = handlers
        root.setLevel(level)
