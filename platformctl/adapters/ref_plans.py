"""Plans of a git ref: the offline plan of stacks in a temporary checkout of the ref, by that ref's own
code, for the commands that compare a branch with its base."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from platformctl.adapters.stackfile import stack_file


def plans_at(names: list[str], ref: str, tree: Path) -> dict[str, dict[str, Any] | None]:
    """The plan document of each stack of ``names`` in the checkout ``tree`` of ``ref`` (``None`` for one
    without its file there), each planned in a process of its own, all at once."""
    with ThreadPoolExecutor(max(1, len(names))) as pool:
        return dict(zip(names, pool.map(lambda name: plan_at(name, ref, tree), names), strict=True))


def plan_at(stack: str, ref: str, tree: Path) -> dict[str, Any] | None:
    if not stack_file(stack, tree).is_file():
        return None
    result = subprocess.run([sys.executable, "-m", "platformctl", "plan", stack, "--json"], cwd=tree,
                            capture_output=True, text=True, check=False)
    if result.returncode not in (0, 1) or not result.stdout.strip():  # 1: the program refused the config
        raise RuntimeError(f"the plan of {stack!r} at {ref} failed: {result.stderr.strip()}")
    plan: dict[str, Any] = json.loads(result.stdout)
    return plan


@contextmanager
def worktree(root: Path, ref: str) -> Iterator[Path]:
    """A checkout of ``ref`` in a temporary ``git worktree``, removed afterwards."""
    git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    scratch = Path(tempfile.mkdtemp(prefix="platformctl-diff-"))
    tree = scratch / "base"
    try:
        git(root, "worktree", "add", "--detach", "--quiet", str(tree), ref)
        yield tree
    finally:
        if tree.exists():
            git(root, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(scratch, ignore_errors=True)


def git(root: Path, *args: str) -> None:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = result.stderr.strip() or "not a commit"
        raise RuntimeError(f"git {' '.join(args)}: {detail}")


