"""Starting the real service (`aiguilleur serve`, uvicorn) on a free loopback port."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def run_child_cli(
    *args: str, database_url: str, **settings: str
) -> subprocess.CompletedProcess[str]:
    """Run `aiguilleur ARGS` in a child process against the given database (and settings): for
    the few tests of the entry point itself; the others use `tests.cli.run_cli`, in-process."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env={"AIGUILLEUR_DATABASE_URL": database_url, "PATH": "", **settings},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(database_url: str, config: Path, log: Path, **settings: str) -> Iterator[str]:
    """Run `aiguilleur serve` until the block ends; yields its base URL once /ready answers 200."""
    port = free_port()
    env = {
        **os.environ,
        "AIGUILLEUR_DATABASE_URL": database_url,
        "AIGUILLEUR_LOG_LEVEL": "WARNING",
        **settings,
    }
    command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as output:
        process = subprocess.Popen(
            [*command, "--config", str(config)],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base_url, process, log)
            yield base_url
        finally:
            process.terminate()
            process.wait(timeout=20)


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base_url}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the server was not ready within 60 s:\n{log.read_text()}")
