"""Which team stacks a pull request previews, and what choosing them costs, at N applications: N
generated applications in 20-application teams, each in prod only, with prod stating ``teamStacks``,
committed as the base of a throwaway repository; then, each as a fresh process with its wall time and
the stacks it chose, ``python -m platformctl team-stacks prod --changed-since HEAD`` for:

- ``refactor``: a change to the program that declares nothing new (a comment in ``components/kv.py``);
  each side is planned offline, by its own code;
- ``one app``: one application's file changed;
- ``docs``: a page of the docs changed.

    venv/bin/python -m benchmarks.preview_selection N [N ...]
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

from tests.support import commit, repository_copy


def write_app(root: Path, i: int, ttl: str = "1h") -> None:
    path = root / "apps" / f"team-{i // 20}" / f"app-{i}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "serviceAccount": f"app-{i}", "tokenTtl": ttl,
        "secrets": {f"app-{i}-kv": {"data": {"token": {"random": {"length": 32}}}}},
        "environments": {"prod": {"namespace": f"team-{i // 20}", "kvPaths": [f"production/app-{i}-kv"]}}}
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def selection(root: Path) -> tuple[float, int]:
    """The wall time of the choice and how many team stacks it chose."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "platformctl", "team-stacks", "prod", "--changed-since", "HEAD"],
                          cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"team-stacks exited {done.returncode}:\n{done.stderr[-3000:]}")
    return round(time.monotonic() - started, 1), len(done.stdout.split())


def measure(count: int, directory: Path) -> dict[str, Any]:
    root = repository_copy(directory / "repository")
    environment = root / "stacks" / "Pulumi.prod.yaml"
    split = environment.read_text().replace("config:\n", "config:\n  vault-platform:teamStacks: true\n", 1)
    environment.write_text(split)
    for i in range(count):
        write_app(root, i)
    commit(root, "applications")
    result: dict[str, Any] = {"apps": count}
    kv = root / "components" / "kv.py"
    original = kv.read_text()
    kv.write_text(original + "# A comment declares nothing.\n")
    result["refactor s"], result["refactor stacks"] = selection(root)
    kv.write_text(original)
    write_app(root, 0, ttl="30m")
    result["one app s"], result["one app stacks"] = selection(root)
    subprocess.run(["git", "checkout", "-q", "--", "apps"], cwd=root, check=True)
    (root / "docs" / "index.md").write_text("changed\n")
    result["docs s"], result["docs stacks"] = selection(root)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("counts", nargs="+", type=int)
    for count in parser.parse_args().counts:
        with tempfile.TemporaryDirectory(prefix="bench-") as directory:
            print(json.dumps(measure(count, Path(directory))), flush=True)


if __name__ == "__main__":
    main()
