"""How the access matrix (``platformctl access``, and the "Access changes" of the PR comment) scales
with the number of applications a stack onboards.

For each N, the prod stack gets N generated applications (each with its own KV secret, database
role, declared policy and auth role: see ``benchmarks.apps_scaling``). The program declares it once
under the mock engine (not timed here: ``apps_scaling`` measures that), then:

- ``matrix``: :func:`vaultmodel.access.access_matrix` on the declared resources: every policy parsed,
  every identity's ACL built, every declared target's paths evaluated;
- ``changes``: the matrices of that stack and of the same with one more application, and
  :func:`vaultmodel.access.access_changes` between them, what the PR comment computes.

Times are CPU seconds of this process; a flat "ms/app" column is linear growth.

    venv/bin/python -m benchmarks.access_scaling [N ...]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.apps_scaling import ROOT, add_apps
from platformctl.adapters.engine import declare
from platformctl.adapters.stackfile import read_stack
from vaultmodel.access import Resource, access_changes, access_matrix


def declared(count: int) -> list[Resource]:
    """The resources the prod stack with ``count`` generated applications declares."""
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch)
        for directory in ("stacks", "apps"):
            shutil.copytree(ROOT / directory, tree / directory)
        add_apps(count, tree, (ROOT / "stacks" / "Pulumi.prod.yaml").read_text())
        stack = read_stack("prod", tree)
    declaration = declare(stack.stack, stack.config, stack.secret_keys, stack.apps)
    assert declaration.error is None, declaration.error
    return [(resource.type, resource.inputs) for resource in declaration.resources]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("counts", nargs="*", type=int, default=[250, 500, 1000, 2000])
    args = parser.parse_args()
    print(f"{'apps':>5} {'identities':>10} {'reaches':>8} {'matrix s':>9} {'ms/app':>7} {'changes s':>10}")
    for count in args.counts:
        base, head = declared(count), declared(count + 1)
        started = time.process_time()
        matrix = access_matrix(base)
        seconds = time.process_time() - started
        started = time.process_time()
        changes = access_changes(access_matrix(base), access_matrix(head))
        diff_seconds = time.process_time() - started
        # The new app is the one new identity; the platform's own identities only gain its targets.
        assert [c.subject for c in changes if c.status == "new"] == [f"team-{count % 50}/app-{count}"], changes
        assert all(not c.lost for c in changes), changes
        reaches = sum(len(identity.reaches) for identity in (*matrix.identities, *matrix.platform))
        print(f"{count:5d} {len(matrix.identities):10d} {reaches:8d} {seconds:9.2f} "
              f"{1000 * seconds / count:7.2f} {diff_seconds:10.2f}")


if __name__ == "__main__":
    main()
