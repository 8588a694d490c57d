"""How the plan scales with the number of applications a stack onboards, against a floor.

For each N, the prod stack gets N generated applications (each with its own KV secret, database
role, declared policy and auth role), written into a throwaway copy of the project: each in its
own file, or in the stack file for a commit from before application files. Three numbers
are measured there, each in a process of its own so that none inherits another's heap:

- ``floor``: a flat program declaring the same resource types, names and inputs (no components, no
  ``depends_on``) under the same mock engine: what registering that many resources costs at least;
- ``program``: the real program under the mock engine (spec, components, resources);
- ``plan``: ``python -m platformctl plan prod`` from start to end, as ``bin/plan`` runs it: the stack
  file read, the program, the text rendered.

With ``--before REF`` the program and plan are measured at that commit too, in the same run. No
tracing is on (``tracemalloc`` slows the SDK three to four times). Times are the process's CPU
seconds, which other load on the machine does not inflate; memory is the peak resident size.

    venv/bin/python -m benchmarks.apps_scaling [--before REF] [N ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
P = "vault-platform:"


def add_apps(count: int, tree: Path, prod_stack_file: str, *, in_files: bool = True) -> None:
    """Writes the prod stack file ``prod_stack_file`` (its text) into the project copy ``tree`` with
    ``count`` generated applications: each in its own file (``apps/bench-<n>/app-<i>.yaml``, with its
    KV secret and database role; its declared policy in the stack file), or, without ``in_files`` (a
    commit from before application files), all in the stack file."""
    document: dict[str, Any] = yaml.safe_load(prod_stack_file)
    config = document["config"]
    config[f"{P}policies"] = [*config.get(f"{P}policies", []), *(
        {"name": f"policy-{i}", "rules": [{"path": f"secret/data/production/app-{i}", "capabilities": ["read"]}]}
        for i in range(count)
    )]
    secrets = {f"app-{i}": {"data": {"token": {"random": {"length": 32}}}} for i in range(count)}
    roles = [{"name": f"app-{i}-reader", "connection": "postgres",
              "grants": [{"privileges": ["SELECT"], "schema": "public"}]} for i in range(count)]
    entries = [{"namespace": f"team-{i % 50}", "serviceAccount": f"app-{i}", "kvPaths": [f"production/app-{i}"],
                "databaseRole": f"app-{i}-reader", "policies": [f"policy-{i}"]} for i in range(count)]
    for generated in (tree / "apps").glob("bench-*"):
        shutil.rmtree(generated)
    if in_files:
        for i, entry in enumerate(entries):
            path = tree / "apps" / f"bench-{i % 50}" / f"app-{i}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump({**entry, "secrets": {f"app-{i}": secrets[f"app-{i}"]},
                                            "databaseRoles": [roles[i]], "environments": {"prod": None}}))
    else:
        config[f"{P}kv"]["secrets"].update(secrets)
        config[f"{P}database"]["roles"] += roles
        config[f"{P}apps"] += [{"name": f"app-{i}", **entry} for i, entry in enumerate(entries)]
    (tree / "stacks" / "Pulumi.prod.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def _copy_of(ref: str | None, into: Path) -> Path:
    """The project at ``ref`` (``None``: the working tree) in ``into``, without its virtualenv."""
    if ref is None:
        shutil.copytree(ROOT, into, ignore=shutil.ignore_patterns("venv", ".git", "*_cache", "__pycache__"))
    else:
        into.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _child(root: Path, argv: list[str]) -> dict[str, float]:
    """Runs ``argv`` with ``root``'s code first on the path; the child reports its own numbers."""
    done = subprocess.run([sys.executable, *argv], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed in {root}:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stderr.strip().splitlines()[-1])
    return result


_TIMED_PLAN = """
import json, resource, runpy, sys, time
sys.argv = ["platformctl", "plan", "prod"]
started = time.process_time()
try:
    runpy.run_module("platformctl", run_name="__main__")
except SystemExit as exit_:
    assert not exit_.code, exit_.code
print(json.dumps({"seconds": time.process_time() - started,
                  "mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), file=sys.stderr)
"""


def measure_in_child(kind: str) -> None:
    """In a child process: declares the stack written under the current directory, as ``kind``."""
    from platformctl.adapters.engine import declare
    from platformctl.adapters.stackfile import read_stack

    stack = read_stack("prod", Path.cwd())
    if kind == "program":
        started = time.process_time()
        declaration = declare(*_declared(stack))
        seconds = time.process_time() - started
    else:
        import pulumi

        from platformctl.adapters.engine import declare_with
        from platformctl.core.declaration import unwrap  # the floor runs on this side only

        real = declare(*_declared(stack))
        flat = [(r.type, r.name, unwrap(r.inputs)) for r in real.resources if r.custom]
        del real

        def flat_program() -> None:
            for type_token, name, inputs in flat:
                pulumi.CustomResource(type_token, name, inputs)

        started = time.process_time()
        declaration = declare_with(flat_program, *_declared(stack))
        seconds = time.process_time() - started
    assert declaration.error is None, declaration.error
    print(json.dumps({"seconds": seconds, "resources": len([r for r in declaration.resources if r.custom]),
                      "mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), file=sys.stderr)


def _declared(stack: Any) -> tuple[Any, ...]:
    """What ``declare`` takes of ``stack``: its application files too, once the code has them."""
    apps = getattr(stack, "apps", None)
    return (stack.stack, stack.config, stack.secret_keys, *(() if apps is None else (apps,)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("counts", nargs="*", type=int, default=[250, 500, 750, 1000])
    parser.add_argument("--before", metavar="REF", help="also measure the program and plan at this commit")
    parser.add_argument("--measure", choices=["program", "floor"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure_in_child(args.measure)
        return
    me = str(Path(__file__).resolve().relative_to(ROOT))
    with tempfile.TemporaryDirectory() as scratch:
        trees = {"after": _copy_of(None, Path(scratch) / "after")}
        if args.before:
            trees["before"] = _copy_of(args.before, Path(scratch) / "before")
            shutil.copy(__file__, trees["before"] / me)  # the same measuring code on both sides
        # Each side gets its own prod stack with the apps added: the one its own rules accept.
        committed = {label: (tree / "stacks" / "Pulumi.prod.yaml").read_text() for label, tree in trees.items()}
        print(f"{'apps':>5} {'resources':>9} {'floor s':>8} " + " ".join(
            f"{label + ' ' + what:>16}" for label in trees for what in ("program s", "plan s", "plan MiB")))
        for count in args.counts:
            for label, tree in trees.items():
                # The spec's package: environment/, or a sub-package of components/ in a commit from before it moved.
                in_files = any(tree.joinpath(*package, "apps.py").is_file()
                               for package in (("environment",), ("components", "environment")))
                add_apps(count, tree, committed[label], in_files=in_files)
            floor = _child(trees["after"], [me, "--measure", "floor"])
            cells = [f"{count:5d}", f"{int(floor['resources']):9d}", f"{floor['seconds']:8.2f}"]
            for tree in trees.values():
                program = _child(tree, [me, "--measure", "program"])
                plan = _child(tree, ["-c", _TIMED_PLAN])
                cells += [f"{program['seconds']:16.2f}", f"{plan['seconds']:16.2f}", f"{plan['mib']:16.0f}"]
            print(" ".join(cells), flush=True)


if __name__ == "__main__":
    main()
