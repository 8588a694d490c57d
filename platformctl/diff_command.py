"""``platformctl diff <stack> --base <git ref>``: what a branch changes in what a stack declares, as
Markdown (the pull request comment). Both sides are evaluated offline with Pulumi's mocks: the
working tree here, the base ref in a temporary ``git worktree`` by the same Python."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .diff import diff_plans, render_markdown
from .engine import ROOT, declare
from .plan import plan_document
from .stackfile import read_stack, stacks

NAME = "diff"
HELP = "print, as Markdown, how the working tree's plan of a stack differs from a git ref's (secrets masked)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", help=f"stack name ({', '.join(stacks())})")
    parser.add_argument("--base", required=True, help="git ref to compare with, e.g. origin/main")


def run(args: argparse.Namespace) -> int:
    try:
        head_stack = read_stack(args.stack)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    head = plan_document(declare(head_stack.stack, head_stack.config, head_stack.secret_keys))
    try:
        base = base_plan(args.stack, args.base, ROOT)
    except (RuntimeError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(render_markdown(diff_plans(base, head), args.base))
    return 0


def base_plan(stack: str, ref: str, root: Path) -> dict[str, Any]:
    """The plan document of ``stack`` at git ``ref`` (an empty plan when the stack did not exist there)."""
    _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    scratch = Path(tempfile.mkdtemp(prefix="platformctl-diff-"))
    tree = scratch / "base"
    try:
        _git(root, "worktree", "add", "--detach", "--quiet", str(tree), ref)
        result = subprocess.run([sys.executable, "-m", "platformctl", "plan", stack, "--json"], cwd=tree,
                                capture_output=True, text=True, check=False)
        if result.returncode == 2 and "no stack" in result.stderr:
            return {"stack": stack, "error": None, "warnings": [], "resources": {}, "outputs": {}}
        if result.returncode not in (0, 1) or not result.stdout.strip():  # 1: the program refused the config
            raise RuntimeError(f"the plan of {stack!r} at {ref} failed: {result.stderr.strip()}")
        document: dict[str, Any] = json.loads(result.stdout)
        return document
    finally:
        if tree.exists():
            _git(root, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(scratch, ignore_errors=True)


def _git(root: Path, *args: str) -> None:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = result.stderr.strip() or "not a commit"
        raise RuntimeError(f"git {' '.join(args)}: {detail}")
