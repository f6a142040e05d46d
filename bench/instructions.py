"""Instructions a post costs to ingest, in-process on SQLite, counted by valgrind's callgrind.

Usage: python bench/instructions.py [--size 1000] [--groups 2] [--keep DIR]

This machine's speed drifts by a third within minutes, which hides a change of a few percent
in seconds; an instruction count does not drift (the same code and inputs give the same count
to a few hundredths of a percent, whatever else the machine does). It misses what instructions
do not show (a cache miss costs no instruction), so a change that is about memory is measured in
seconds too. The script runs itself under callgrind (`apt-get install valgrind`), and counts
only the measured groups: the model, the accounts and the database are set up first, and two
groups are ingested to warm up. Each group is `service.ingest` of `--size` new posts and its
commit, as a group of single posts or a batch is written. Prints figures; asserts nothing.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from app import heap
from app.classify import serving
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.ingest import service
from app.ingest.schemas import MentionIn
from bench.ingest import batch_bodies, prepare

MEASURED = "AIGUILLEUR_INSTRUCTIONS_MEASURED"  # set in the child that valgrind runs
WARM_UP = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1000, help="posts per group")
    parser.add_argument("--groups", type=int, default=2, help="groups to count")
    parser.add_argument("--keep", type=Path, default=None, help="keep callgrind's file here")
    args = parser.parse_args()
    if os.environ.get(MEASURED):
        ingest_groups(args.size, args.groups)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed: `apt-get install valgrind` (Debian, Ubuntu)")
    with tempfile.TemporaryDirectory() as scratch:
        output = (args.keep or Path(scratch)) / "callgrind.out"
        instructions = count(output, sys.argv[1:])
    posts = args.size * args.groups
    print(f"{args.groups} groups of {args.size} posts: {instructions:,} instructions")
    print(f"  {instructions / args.groups / 1e6:,.1f} million a group")
    print(f"  {instructions / posts / 1e6:,.3f} million a post")


def count(output: Path, arguments: list[str]) -> int:
    """Run this script under callgrind, counting from when it switches collection on."""
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
    command += [f"--callgrind-out-file={output}", sys.executable, __file__, *arguments]
    done = subprocess.run(  # noqa: S603 - valgrind, our interpreter and this script
        # A fixed hash seed: the order of sets and dictionaries of strings, and so the count,
        # would otherwise change from run to run.
        command,
        env={**os.environ, MEASURED: "1", "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"the measured run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    totals = re.search(r"^totals: (\d+)", output.read_text(), re.MULTILINE)
    if totals is None:
        sys.exit(f"no instruction count in {output}")
    return int(totals.group(1))


def ingest_groups(size: int, groups: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{scratch}/instructions.db"
        prepare(url)
        settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
        engine = make_engine(settings)
        sessions = make_sessionmaker(engine)
        classifier = serving.at_start(sessions=sessions, settings=settings, given=None)
        heap.settle()
        parts = [
            [MentionIn.model_validate(m) for m in json.loads(body)["mentions"]]
            for body in batch_bodies(WARM_UP + groups, size, "instructions")
        ]
        for i, part in enumerate(parts):
            if i == WARM_UP:
                _collect("on")
            with sessions() as session:
                service.ingest(
                    session=session,
                    classifier=classifier,
                    mentions=part,
                    limit=size,
                    reopen_within=settings.reopen_window,
                )
                session.commit()
        _collect("off")
        engine.dispose()


def _collect(state: str) -> None:
    """Switch callgrind's counting of this process on or off."""
    command = ["callgrind_control", "--instr=" + state, str(os.getpid())]
    subprocess.run(command, capture_output=True, check=True, timeout=60)  # noqa: S603 - valgrind's


if __name__ == "__main__":
    main()
