"""Ingest throughput and latency next to FastAPI's own, on SQLite and on PostgreSQL.

Usage: python bench/ingest.py [--postgres-url URL] [--only single,batch,import]
                              [--duration 20] [--connections 64] [--batches 30] [--rows 100000]

For each database (a fresh SQLite file; then PostgreSQL if a URL is given: it is emptied first,
give it a database of its own) it prints:
- single: `POST /v1/mentions` driven by wrk (64 connections, 20 s, distinct external ids, FR/EN
  texts of the seed corpus), first against a bare FastAPI app that only validates the same body
  (bench/bare.py), then against Aiguilleur; both under uvicorn with the same worker count (1 on
  SQLite, 2 on PostgreSQL). Throughputs, their ratio, p50/p99 latency, errors, the mentions
  actually committed, and the resident memory of Aiguilleur's worker processes;
- batch: `POST /v1/mentions/batch` of 1,000 mentions, two requests in flight, end to end
  (mentions per second; per-request p50/p99); one process, and on PostgreSQL two as well;
- import: `aiguilleur import FILE` of `--rows` mentions in JSON lines, wall-clock time.

It needs wrk, the HTTP load generator: `apt-get install wrk` on Debian or Ubuntu
(https://github.com/wg/wrk elsewhere). Prints figures; it asserts nothing.
"""

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import func, select, text

from app import schema
from app.access import service as access
from app.access.schemas import KeyCreate
from app.config import Settings
from app.configuration import service as configuration
from app.db import make_engine, make_sessionmaker
from app.ingest.models import Mention
from ml.dataset import seed_corpus

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "aiguilleur.example.yaml"
# Most posts address the company; some its second account, some the CEO's.
ACCOUNTS = ["TransNordRail"] * 8 + ["TransNordAide", "CamilleDurand_CEO"]
AUTHORS = 20_000  # distinct riders: a few post twice in a thread, most once

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
local texts = {%(texts)s}
local accounts = {%(accounts)s}
local next_thread, counter, prefix = 0, 0, nil
function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
end
function init(args)
  prefix = args[1] .. "-" .. thread_id
end
function request()
  counter = counter + 1
  local body = '{"source":"bench","external_id":"' .. prefix .. "-" .. counter
    .. '","account":"' .. accounts[counter %% #accounts + 1]
    .. '","author":{"handle":"rider' .. (counter * 7919 + thread_id) %% %(authors)d
    .. '"},"text":' .. texts[(counter * 31 + thread_id) %% #texts + 1] .. "}"
  return wrk.format(nil, nil, nil, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "seconds": %%f, "p50_us": %%d, "p99_us": %%d, "errors": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


@dataclass(frozen=True)
class Load:
    """What wrk measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def line(self) -> str:
        return (
            f"{self.rate:8,.0f} req/s  p50 {self.p50_ms:6.1f} ms  p99 {self.p99_ms:6.1f} ms  "
            f"errors {self.errors:,} of {self.requests:,}"
        )


def texts() -> list[str]:
    return [example.text for example in seed_corpus()]


def prepare(url: str) -> str:
    """An empty, migrated, configured database; returns a new key with the ingest scope."""
    engine = make_engine(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    schema.upgrade(engine)
    with make_sessionmaker(engine)() as session, session.begin():
        configuration.apply(session=session, config=configuration.read_file(EXAMPLE), source="b")
        _, token = access.create(session=session, key_in=KeyCreate(name="bench", scopes=["ingest"]))
    engine.dispose()
    return token


def count_mentions(url: str, source: str) -> int:
    engine = make_engine(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
    with engine.connect() as connection:
        query = select(func.count()).select_from(Mention).where(Mention.source == source)
        count = int(connection.execute(query).scalar_one())
    engine.dispose()
    return count


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    process: subprocess.Popen[bytes]
    base_url: str


@contextmanager
def uvicorn(target: str, workers: int, env: dict[str, str], log: Path) -> Iterator[Server]:
    """`uvicorn TARGET` with these workers (uvloop and httptools, no access log) until the block
    ends; yields it once it answers HTTP."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", *target.split(), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    command += ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
    with log.open("w") as output:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command, cwd=ROOT, env={**os.environ, **env}, stdout=output, stderr=output
        )
        server = Server(process, f"http://127.0.0.1:{port}")
        try:
            _wait_up(server, log)
            if workers > 1:
                time.sleep(5)  # the first worker answers; give the others time to load the model
            yield server
        except BaseException:
            print(f"{target} on port {port}, exit {process.poll()}; its log:", file=sys.stderr)
            print(log.read_text(), file=sys.stderr)
            raise
        finally:
            process.terminate()
            process.wait(timeout=60)


def _wait_up(server: Server, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            sys.exit(f"the server exited with {server.process.returncode}:\n{log.read_text()}")
        try:
            httpx.get(f"{server.base_url}/docs", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    sys.exit(f"the server did not answer within 120 s:\n{log.read_text()}")


def wrk(base_url: str, script: Path, label: str, seconds: int, connections: int) -> Load:
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s"]
    command += ["-s", str(script), f"{base_url}/v1/mentions", "--", label]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"wrk failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    return Load(
        requests=result["requests"],
        seconds=result["seconds"],
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        errors=result["errors"],
    )


def write_wrk_script(path: Path, token: str, corpus: list[str]) -> None:
    def lua(value: str) -> str:
        return "[==[" + value + "]==]"

    script = WRK_SCRIPT % {
        "token": token,
        "texts": ", ".join(lua(json.dumps(t)) for t in corpus),
        "accounts": ", ".join(lua(a) for a in ACCOUNTS),
        "authors": AUTHORS,
    }
    path.write_text(script, encoding="utf-8")


def resident_mb(server: Server) -> list[tuple[float, float]]:
    """(resident, peak resident) in MB of the server's worker processes."""
    pids = _children(server.process.pid) or [server.process.pid]
    sizes = []
    for pid in pids:
        sizes.append((_status_kb(pid, "VmRSS") / 1024, _status_kb(pid, "VmHWM") / 1024))
    return sizes


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # uvicorn's supervisor starts one process per worker (multiprocessing may add a helper).
        if int(fields[1]) == pid and "python" in (stat.parent / "cmdline").read_text():
            found.append(int(stat.parent.name))
    return [p for p in found if _status_kb(p, "VmRSS") > 50_000]


def cpu_seconds(server: Server) -> float:
    """CPU time (user + system) used so far by the server's worker processes: what a request
    costs, whatever else the machine is doing."""
    pids = _children(server.process.pid) or [server.process.pid]
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def single(url: str, token: str, workers: int, args: argparse.Namespace, scratch: Path) -> None:
    script = scratch / "mentions.lua"
    write_wrk_script(script, token, texts())
    env = {"AIGUILLEUR_DATABASE_URL": url, "AIGUILLEUR_LOG_LEVEL": "WARNING"}
    with uvicorn("bench.bare:app", workers, env, scratch / "bare.log") as bare:
        wrk(bare.base_url, script, "warm", 3, args.connections)
        bare_load = wrk(bare.base_url, script, "bare", args.duration, args.connections)
    with uvicorn("app.main:create_app --factory", workers, env, scratch / "aig.log") as server:
        idle = resident_mb(server)
        wrk(server.base_url, script, "warm", 3, args.connections)
        cpu_before = cpu_seconds(server)
        load = wrk(server.base_url, script, "load", args.duration, args.connections)
        cpu = cpu_seconds(server) - cpu_before
        after = resident_mb(server)
    committed = count_mentions(url, "bench")
    print(f"single POST /v1/mentions, {args.connections} connections, {args.duration} s:")
    print(f"  bare FastAPI {bare_load.line()}")
    print(f"  Aiguilleur   {load.line()}  ({committed:,} mentions committed)")
    print(
        f"  ratio {load.rate / bare_load.rate:.2f} (target >= 0.4); "
        f"p99 {load.p99_ms:.1f} ms (target < 50 ms)"
    )
    print(
        f"  server CPU {cpu * 1000 / max(load.requests, 1):.2f} ms per request "
        f"({cpu / load.seconds:.0%} of a core over the run); load average {_load()}"
    )
    sizes = ", ".join(f"{rss:.0f} MB (peak {peak:.0f} MB)" for rss, peak in after)
    print(f"  worker memory: {', '.join(f'{rss:.0f} MB' for rss, _ in idle)} at start; {sizes}")


def batch_bodies(count: int, size: int, run: str) -> list[bytes]:
    corpus = texts()
    bodies = []
    for b in range(count):
        mentions = [
            {
                "source": "batch",
                "external_id": f"{run}-{b}-{i}",
                "account": ACCOUNTS[i % len(ACCOUNTS)],
                "author": {"handle": f"rider{(b * size + i) * 7919 % AUTHORS}"},
                "text": corpus[(b * size + i) * 31 % len(corpus)],
            }
            for i in range(size)
        ]
        bodies.append(json.dumps({"mentions": mentions}).encode())
    return bodies


def send_batches(base_url: str, token: str, bodies: list[bytes], in_flight: int) -> list[float]:
    """Post every body, `in_flight` at a time; the seconds each took."""
    pending, lock, took, errors = list(bodies), threading.Lock(), [], []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def sender() -> None:
        with httpx.Client(base_url=base_url, headers=headers, timeout=300) as client:
            while True:
                with lock:
                    if not pending:
                        return
                    body = pending.pop()
                started = time.perf_counter()
                response = client.post("/v1/mentions/batch", content=body)
                took.append(time.perf_counter() - started)
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=sender) for _ in range(in_flight)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        print(f"  {len(errors)} batches failed, the first: {errors[0]}")
    return took


def batch(url: str, token: str, workers: int, args: argparse.Namespace, scratch: Path) -> None:
    bodies = batch_bodies(args.batches + 2, 1000, f"w{workers}")
    env = {"AIGUILLEUR_DATABASE_URL": url, "AIGUILLEUR_LOG_LEVEL": "WARNING"}
    in_flight = 2 * workers
    with uvicorn("app.main:create_app --factory", workers, env, scratch / "batch.log") as server:
        send_batches(server.base_url, token, bodies[:2], in_flight)  # warm-up
        cpu_before = cpu_seconds(server)
        started = time.perf_counter()
        took = send_batches(server.base_url, token, bodies[2:], in_flight)
        seconds = time.perf_counter() - started
        cpu = cpu_seconds(server) - cpu_before
    took.sort()
    print(
        f"batch POST /v1/mentions/batch of 1,000, {workers} process(es), {in_flight} in flight: "
        f"{len(took) * 1000 / seconds:,.0f} mentions/s ({len(took)} batches in {seconds:.1f} s; "
        f"per request p50 {statistics.median(took) * 1000:.0f} ms, "
        f"p99 {took[min(len(took) - 1, int(0.99 * len(took)))] * 1000:.0f} ms); "
        f"server CPU {cpu * 1000 / max(len(took), 1):.0f} ms per batch; load average {_load()}"
    )


def write_import_file(path: Path, rows: int) -> None:
    corpus = texts()
    with path.open("w", encoding="utf-8") as out:
        for i in range(rows):
            mention = {
                "source": "import",
                "external_id": f"imp-{i}",
                "account": ACCOUNTS[i % len(ACCOUNTS)],
                "author": {"handle": f"customer{i * 7919 % AUTHORS}"},
                "text": corpus[i * 31 % len(corpus)],
                "created_at": "2026-11-20T08:15:00+01:00",
            }
            out.write(json.dumps(mention, ensure_ascii=False) + "\n")


def import_file(url: str, args: argparse.Namespace, scratch: Path) -> None:
    path = scratch / "mentions.jsonl"
    write_import_file(path, args.rows)
    env = {**os.environ, "AIGUILLEUR_DATABASE_URL": url, "AIGUILLEUR_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "app.cli", "import", str(path)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        print(f"import: failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
        return
    stored = count_mentions(url, "import")
    print(
        f"import of {args.rows:,} mentions (JSON lines): {seconds:.1f} s wall clock, command "
        f"start to exit ({args.rows / seconds:,.0f} mentions/s); {stored:,} stored; "
        f"load average {_load()}"
    )


def run_on(url: str, label: str, workers: int, args: argparse.Namespace) -> None:
    print(f"== {label}")
    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        if url.startswith("sqlite"):
            url = f"sqlite:///{scratch}/bench.db"
        token = prepare(url)
        if "single" in args.only:
            single(url, token, workers, args, scratch)
        if "batch" in args.only:
            batch(url, token, 1, args, scratch)
            if workers > 1:
                batch(url, token, workers, args, scratch)
        if "import" in args.only:
            import_file(url, args, scratch)


def _load() -> str:
    """The machine's 1-minute load average: other work shares the cores with the benchmark."""
    return f"{os.getloadavg()[0]:.1f}"


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{model or platform.machine()}, {os.cpu_count()} CPUs, {memory:.0f} GiB; "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres-url", default=None, help="also run on this PostgreSQL")
    parser.add_argument("--postgres-workers", type=int, default=2)
    parser.add_argument("--only", default="single,batch,import")
    parser.add_argument("--duration", type=int, default=20, help="seconds of each wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--batches", type=int, default=30, help="batches of 1,000 to time")
    parser.add_argument("--rows", type=int, default=100_000, help="mentions in the import file")
    args = parser.parse_args()
    if "single" in args.only and shutil.which("wrk") is None:
        sys.exit(
            "wrk is needed: `apt-get install wrk` (Debian, Ubuntu) or https://github.com/wg/wrk"
        )
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]  # progress as it goes
    print(f"machine: {machine()}")
    run_on("sqlite", "SQLite, 1 worker", 1, args)
    if args.postgres_url:
        workers = args.postgres_workers
        run_on(args.postgres_url, f"PostgreSQL, {workers} workers", workers, args)


if __name__ == "__main__":
    main()
