"""``platformctl db-setup <stack> [--since <git ref>]``: the SQL a DBA applies so that Vault's admin
can serve the stack's database roles: the complete, idempotent script per connection, or with
``--since`` only what the stack's changes since that ref need (the stack file and the application
files as of that ref, from ``git archive``). Exit 2 when a stack, its spec or the ref cannot be read."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from environment import EnvironmentSpec, SpecError
from environment.apps import APPS_DIR
from platformctl.adapters.engine import ROOT
from platformctl.adapters.git_files import files_at
from platformctl.adapters.stackfile import StackFileError, read_stack, stack_file, stack_spec, stacks
from platformctl.core.db_setup import changed_scripts, full_scripts, render

NAME = "db-setup"
HELP = "print the SQL a DBA runs once per database for the stack's database roles (--since: only what changed)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", help=f"stack name ({', '.join(stacks())})")
    parser.add_argument("--since", metavar="REF", help="git ref to compare with, e.g. origin/main: print only "
                        "what the changes since then need")


def run(args: argparse.Namespace) -> int:
    try:
        head = stack_spec(read_stack(args.stack))
        base = base_spec(args.stack, args.since, ROOT) if args.since else None
    except (FileNotFoundError, StackFileError, SpecError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if head.database is None:
        print(f"-- {args.stack}: no database connections; nothing to set up")
        return 0
    if args.since is None:
        scripts = full_scripts(head.database)
    else:
        scripts = changed_scripts(base.database if base is not None else None, head.database)
    sys.stdout.write(render(args.stack, scripts, args.since))
    return 0


def base_spec(stack: str, ref: str, root: Path) -> EnvironmentSpec | None:
    """The stack's spec as of ``ref`` (its stack file and the application files then, read with
    today's rules), or None when it did not exist then."""
    verify = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=root,
                            capture_output=True, text=True, check=False)
    if verify.returncode != 0:
        raise RuntimeError(f"{ref!r} is not a commit of this repository")
    with tempfile.TemporaryDirectory(prefix="platformctl-db-setup-") as scratch:
        tree = Path(scratch)
        files_at(root, ref, ["stacks", APPS_DIR], tree)
        if not stack_file(stack, tree).is_file():
            return None  # a new stack: everything is new
        try:
            return stack_spec(read_stack(stack, tree))
        except SpecError as error:
            raise RuntimeError(f"the stack as of {ref} is refused by today's rules ({error}); run db-setup "
                               "without --since: the complete script is idempotent") from None
