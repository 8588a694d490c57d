"""``platformctl diff [<stack>...] --base <git ref>``: what a branch changes in what each stack
declares, as Markdown (the pull request comment): first what the change needs outside the
repository, then each application file it changes with who approves it (the base's CODEOWNERS),
then each stack's diff. Both sides are evaluated offline with Pulumi's mocks: the working tree here,
the base ref in a temporary ``git worktree`` by the same Python (:mod:`platformctl.adapters.ref_plans`).

Exit status: 0; 1 when the program refuses a stack's config on the branch (the comment then shows
the refusal and no resource list, and the message goes to stderr too); 2 when a stack file cannot
be read (YAML errors name the file, line and column) or the base cannot be planned."""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from environment import SpecError
from environment.apps import APPS_DIR, Apps, read_apps
from platformctl.adapters.engine import ROOT
from platformctl.adapters.git_files import files_at
from platformctl.adapters.ref_plans import plans_at, worktree
from platformctl.adapters.stackfile import StackFileError, read_stack, stack_file, stack_spec, stacks
from platformctl.core.codeowners import CODEOWNERS, CodeownersError, Rule, parse
from platformctl.core.diff import app_changes, diff_plans, render_app_changes, render_comment
from platformctl.core.outside import Needs, checklist, checklist_markdown, needs_of
from platformctl.core.stack_config import StackConfig

NAME = "diff"
HELP = ("print, as Markdown, what the working tree changes against a git ref: what it needs outside the "
        "repository, then each stack's plan diff (secrets masked)")
EMPTY_PLAN: dict[str, Any] = {"error": None, "warnings": [], "resources": {}, "outputs": {}}


@dataclass(frozen=True)
class BaseSide:
    """One stack as the base ref has it."""

    plan: dict[str, Any]
    """Its plan document, by the base's own code (empty when the stack did not exist there)."""
    needs: Needs | None
    """What it needed outside the repository, by this code; ``None`` when it did not exist or is
    not a config this code accepts (everything the branch needs is then listed)."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stacks", nargs="*", metavar="stack", help=f"stacks to compare (default: all of "
                        f"{', '.join(stacks())})")
    parser.add_argument("--base", required=True, help="git ref to compare with, e.g. origin/main")


def run(args: argparse.Namespace) -> int:
    names: list[str] = args.stacks or stacks()
    apps = read_apps(ROOT)
    try:
        heads = [read_stack(name, apps=apps) for name in names]
    except (FileNotFoundError, StackFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(2) as background:
        # Every plan, the branch's and the base's, runs in a process of its own, all at once: the machine's
        # cores share them. Without a list of stacks, one whose file the branch deletes is compared too:
        # everything it declared is removed.
        base_run = background.submit(base_sides, names, args.base, ROOT, deleted=not args.stacks)
        head_run = background.submit(plans_at, names, "the branch", ROOT)
        try:
            # Each head's file was read above: each has a plan.
            plans = {name: plan or {"stack": name, **EMPTY_PLAN} for name, plan in head_run.result().items()}
            every_base = base_run.result()
            base_apps, owners = base_ownership(args.base, ROOT)
        except (RuntimeError, CodeownersError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    refusals = [plan["error"] for plan in plans.values() if plan.get("error")]
    # A refused stack shows its refusal alone, against no base.
    bases = {name: side for name, side in every_base.items() if name not in plans or not plans[name].get("error")}
    diffs, checks = [], []
    for head in heads:
        plan = plans[head.stack]
        base = bases.get(head.stack, BaseSide({"stack": head.stack, **EMPTY_PLAN}, None))
        diffs.append(diff_plans(base.plan, plan))
        if not plan.get("error"):
            checks.append(checklist(needs_of(head, stack_spec(head)), base.needs, args.base))
    for name in sorted(set(bases) - set(names)):
        diffs.append(diff_plans(bases[name].plan, {"stack": name, **EMPTY_PLAN}))
    sections = [checklist_markdown(checks), render_app_changes(app_changes(base_apps, apps), owners, args.base)]
    sys.stdout.write(render_comment(diffs, args.base, sections))
    for refusal in refusals:
        print(f"error: {refusal}", file=sys.stderr)
    return 1 if refusals else 0


def base_sides(names: list[str], ref: str, root: Path, *, deleted: bool = False) -> dict[str, BaseSide]:
    """Each stack of ``names`` at git ``ref``; with ``deleted``, also each stack ``ref`` has whose
    file is gone from ``root``."""
    if not names and not deleted:
        return {}
    with worktree(root, ref) as tree:
        gone = [name for name in stacks(tree) if deleted and not stack_file(name, root).is_file()]
        wanted = [*names, *gone]
        plans = plans_at(wanted, ref, tree)
        return {name: BaseSide(plan, _needs(name, tree)) if plan is not None else
                BaseSide({"stack": name, **EMPTY_PLAN}, None) for name, plan in plans.items()}


def base_ownership(ref: str, root: Path) -> tuple[Apps, tuple[Rule, ...]]:
    """The application files and the CODEOWNERS rules as of git ``ref``."""
    with tempfile.TemporaryDirectory(prefix="platformctl-diff-") as scratch:
        tree = Path(scratch)
        files_at(root, ref, ["stacks", APPS_DIR, str(CODEOWNERS)], tree)
        rules = parse((tree / CODEOWNERS).read_text()) if (tree / CODEOWNERS).is_file() else ()
        return read_apps(tree), rules


def base_plan(stack: str, ref: str, root: Path) -> dict[str, Any]:
    """The plan document of ``stack`` at git ``ref`` (an empty plan when the stack did not exist there)."""
    return base_sides([stack], ref, root)[stack].plan


def _needs(stack: str, tree: Path) -> Needs | None:
    try:
        config: StackConfig = read_stack(stack, tree)
        return needs_of(config, stack_spec(config))
    except (StackFileError, SpecError):
        return None
