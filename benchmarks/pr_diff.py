"""The offline plan and the pull request's diff of three 1,000-application stacks, as CI runs them: N
generated applications, each in its own file and in every environment (dev, staging, prod, with its
own KV secret and database role there: six resources an application and environment), committed as
the base of a throwaway repository; then a change to one application and a new one, and, each as a
fresh process with its wall time:

- ``plan``: ``python -m platformctl plan <stack>`` for each of the three stacks (``bin/plan``);
- ``diff``: ``python -m platformctl diff --base HEAD``, the pull request's comment: both sides of
  every stack, the access changes and their graph, and who must approve.

    venv/bin/python -m benchmarks.pr_diff N [N ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from tests.support import repository_copy

PREFIX = {"dev": "development", "staging": "staging", "prod": "production"}


def write_app(root: Path, i: int, ttl: str = "1h") -> None:
    path = root / "apps" / f"team-{i // 20}" / f"app-{i}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "serviceAccount": f"app-{i}", "tokenTtl": ttl, "databaseRole": f"app-{i}-reader",
        "secrets": {f"app-{i}": {"data": {"token": {"random": {"length": 32}}}}},
        "databaseRoles": [{"name": f"app-{i}-reader", "connection": "postgres",
                           "grants": [{"privileges": ["SELECT"], "schema": "public"}]}],
        "environments": {stack: {"namespace": f"team-{i // 20}", "kvPaths": [f"{prefix}/app-{i}"]}
                         for stack, prefix in PREFIX.items()}}
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def wall(root: Path, *arguments: str) -> float:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "platformctl", *arguments], cwd=root, capture_output=True,
                          text=True, check=False)
    if done.returncode not in (0, 1):  # diff exits 1 when a stack's plan changes
        raise SystemExit(f"platformctl {' '.join(arguments)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return round(time.monotonic() - started, 1)


def measure(count: int, directory: Path) -> dict[str, Any]:
    root = repository_copy(directory / "repository")
    for i in range(count):
        write_app(root, i)
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@localhost", "-c", "commit.gpgsign=false"]
    for command in (["add", "-A"], [*identity, "commit", "-q", "-m", "applications"]):
        subprocess.run(["git", *command], cwd=root, check=True, capture_output=True)
    write_app(root, 0, ttl="30m")  # a change to one application, and a new one
    write_app(root, count)
    plans = {stack: wall(root, "plan", stack) for stack in PREFIX}
    return {"apps": count, **{f"plan {stack} s": seconds for stack, seconds in plans.items()},
            "plans s": round(sum(plans.values()), 1), "diff s": wall(root, "diff", "--base", "HEAD")}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("counts", nargs="+", type=int)
    for count in parser.parse_args().counts:
        with tempfile.TemporaryDirectory(prefix="bench-") as directory:
            print(json.dumps(measure(count, Path(directory))), flush=True)


if __name__ == "__main__":
    main()
