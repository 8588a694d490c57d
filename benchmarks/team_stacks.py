"""Team stacks at scale under the real Pulumi CLI and providers, against a real Vault (Raft) this script
starts on loopback and stops: N generated applications, ``--per-team`` to a team (so teams grow with
applications, as an organisation's do), on the prod-shaped stack of :mod:`benchmarks.real_cli` with
``vault-platform:teamStacks: true``. The CLI writes every stack's state after every step (checkpoints
on, as the deploys run).

For each N it measures, in a fresh copy of the project and a fresh Vault, the wall time of:

- ``up``: the environment's stack, then every team's (``platformctl team-stacks``), from empty,
  ``--jobs`` team stacks at a time (the workflows run them one at a time);
- ``preview``: a no-op preview of the environment's stack, of one team's, and of all of them;
- ``PR preview``: what a pull request's preview runs (``pr-preview.yml``): the choice of team stacks
  (``team-stacks --changed-since``), then the preview of the environment's stack and of the chosen
  teams', for a refactor (a change to the program that declares nothing new) and for one
  application's change;
- ``one app``: the ``up`` of the one team's stack whose application's file changed (its token TTL);

and the resources of the largest stack, and the largest process's peak memory. Then the floor: the
same four resources an application declared flat by a bare program (no components, no spec), one
stack per team as well, on the same Vault, with the same CLI and providers: its ``up`` from empty and
no-op ``preview`` of every team's stack, against the project's teams'.

    venv/bin/python -m benchmarks.team_stacks [--per-team 20] [--jobs 1] [--parallel P] N [N ...]
    venv/bin/python -m benchmarks.team_stacks --sweep 4,8,16,32 [--per-team 20] [--rounds 3] 0
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from benchmarks.real_cli import STACK, P, bench_stack, write_apps
from tests.e2e.project import PulumiProject
from tests.e2e.servers import VaultServer, running
from tests.e2e.tools import Tools, find_tools
from tests.postgres.server import ServerTls
from tests.support import commit


def split_project(tools: Tools, directory: Path, vault: VaultServer, source: Path | None = None, *,
                  team_stacks: bool = True) -> PulumiProject:
    """A copy of the project (this working tree, or ``source``: a release's tree) whose prod-shaped stack
    (:func:`benchmarks.real_cli.bench_stack`) states ``teamStacks`` (or, without ``team_stacks``, declares
    its applications itself), without applications, its stack initialized against ``vault``."""
    # The local backend writes each checkpoint's metadata sidecar in place, not atomically (gocloud.dev
    # blob/fileblob, writerWithSidecar.Close -> setAttrs): a run killed there leaves a torn sidecar and a
    # checkpoint that no longer loads. The deploys' S3 backend writes whole objects; here, no sidecar.
    project = PulumiProject(tools, directory / "cli",
                            {"PULUMI_BACKEND_URL": f"file://{directory / 'cli' / 'state'}?metadata=skip"},
                            source=source)
    shutil.rmtree(project.root / "apps")
    document = bench_stack(ServerTls.throwaway("bench", "bench CA").ca_pem, directory / "vault-audit.log")
    document["config"][f"{P}teamStacks"] = team_stacks
    (project.root / "stacks" / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    project.init(STACK, {"vault:address": vault.address}, {"vault:token": vault.root_token,
                                                            f"{P}tokenReviewerJwt": "bench-jwt"})
    return project


FLOOR_PROGRAM = '''"""The floor: each application's generated value, KV secret, policy and auth role, declared flat."""
import json

import pulumi
import pulumi_random as random
import pulumi_vault as vault

config = pulumi.Config("floor")
first, count = config.require_int("first"), config.require_int("count")
provider = vault.Provider("vault", address=config.require("address"), token=config.require_secret("token"),
                          skip_child_token=False, max_lease_ttl_seconds=3600)
on_vault = pulumi.ResourceOptions(provider=provider)
for i in range(first, first + count):
    value = random.RandomPassword(f"app-{i}-token", length=32, special=False)
    vault.kv.SecretV2(f"app-{i}", mount="secret", name=f"floor/app-{i}", options={"cas": "0"}, disable_read=True,
                      data_json=value.result.apply(lambda v: json.dumps({"token": v})), opts=on_vault)
    vault.Policy(f"floor-app-{i}", name=f"floor-app-{i}",
                 policy=f'path "secret/data/floor/app-{i}" {{ capabilities = ["read"] }}', opts=on_vault)
    vault.kubernetes.AuthBackendRole(f"floor-app-{i}", backend="kubernetes", role_name=f"floor-app-{i}",
                                     bound_service_account_names=[f"app-{i}"],
                                     bound_service_account_namespaces=["floor"], token_policies=[f"floor-app-{i}"],
                                     token_ttl=3600, token_max_ttl=14400, token_type="service", opts=on_vault)
'''


def floor_project(project: PulumiProject, address: str, token: str, count: int, per_team: int) -> list[str]:
    """The floor's project beside the copy, one stack per team; returns its stacks."""
    root = project.root.parent / "floor"
    root.mkdir()
    (root / "venv").symlink_to(project.root / "venv")
    (root / "Pulumi.yaml").write_text("name: floor\nruntime:\n  name: python\n  options:\n    virtualenv: venv\n")
    (root / "__main__.py").write_text(FLOOR_PROGRAM)
    stacks = []
    for team, first in enumerate(range(0, count, per_team)):
        stack = f"floor-{team}"
        for arguments in (("stack", "init", stack), ("config", "set", "floor:address", address),
                          ("config", "set", "floor:first", str(first)),
                          ("config", "set", "floor:count", str(min(per_team, count - first))),
                          ("config", "set", "--secret", "floor:token", token)):
            project.run("--cwd", str(root), *arguments, *(("--stack", stack) if arguments[0] == "config" else ()))
        stacks.append(stack)
    return stacks


def each_of(stacks: list[str], action: Callable[[str], None]) -> None:
    for stack in stacks:
        action(stack)


def wall(action: Callable[[], Any]) -> float:
    started = time.monotonic()
    action()
    return round(time.monotonic() - started, 1)


def measure(count: int, per_team: int, jobs: int, parallel: int | None, directory: Path,
            floor: bool = True) -> dict[str, Any]:
    tools, missing = find_tools()
    if tools is None:
        raise SystemExit(f"the real tools are missing: {', '.join(missing)}")
    vault = VaultServer(tools.which("vault"), directory / "vault")
    flags = ("--non-interactive", *(("--parallel", str(parallel)) if parallel else ()))
    with running(vault):
        project = split_project(tools, directory, vault)
        write_apps(project.root, count, per_team=per_team)
        teams = project.platformctl("team-stacks", STACK).split()
        for team in teams:
            project.run("stack", "init", team)

        def up(stack: str) -> None:
            project.run("up", "--yes", "--skip-preview", "--stack", stack, *flags, timeout=3600)

        def preview(stack: str) -> None:
            project.run("preview", "--stack", stack, *flags, timeout=3600)

        def each(action: Callable[[str], None]) -> None:
            with ThreadPoolExecutor(jobs) as pool:
                list(pool.map(action, teams))

        up_platform = wall(lambda: up(STACK))
        up_teams = wall(lambda: each(up))
        largest = max(len(json.loads(project.run("stack", "export", "--stack", stack).stdout)["deployment"]
                          .get("resources", [])) for stack in [STACK, *teams])
        preview_platform = wall(lambda: preview(STACK))
        preview_team = wall(lambda: preview(teams[0]))
        preview_all = preview_platform + wall(lambda: each(preview))

        def pull_request() -> tuple[float, int]:
            """What pr-preview.yml runs for the working tree's change against HEAD: the choice of team stacks,
            then the environment's preview and the chosen teams'."""
            chosen: list[str] = []
            seconds = wall(lambda: chosen.extend(project.platformctl("team-stacks", STACK, "--changed-since",
                                                                     "HEAD").split()))
            return round(seconds + wall(lambda: each_of([STACK, *chosen], preview)), 1), len(chosen)

        commit(project.root, "deployed")  # the base a pull request is planned against
        kv = project.root / "components" / "kv.py"
        kv.write_text(kv.read_text() + "# A comment declares nothing.\n")
        pr_refactor = pull_request()
        subprocess.run(["git", "checkout", "-q", "--", "components"], cwd=project.root, check=True)
        write_apps(project.root, 1, ttl="30m", per_team=per_team)  # app-0 changes, every other file stays
        pr_one_app = pull_request()
        one_app = wall(lambda: up(teams[0]))
        # Where one team's up goes: its program alone (the offline plan of its stack, in a process of its
        # own), a no-op up, and the up of a new team's stack with the CLI's checkpoints and without.
        program = wall(lambda: project.platformctl("plan", teams[-1]))
        team_up = wall(lambda: up(teams[-1]))
        write_apps(project.root, count + 2 * per_team, per_team=per_team)
        new_teams = [name for name in project.platformctl("team-stacks", STACK).split() if name not in teams]
        for team in new_teams:
            project.run("stack", "init", team)
        with_checkpoints = wall(lambda: up(new_teams[0]))
        without_checkpoints = wall(lambda: project.run("up", "--yes", "--skip-preview", "--stack", new_teams[1],
                                                       *flags, environment={"PULUMI_SKIP_CHECKPOINTS": "true"},
                                                       timeout=3600))
        resources = sum(len(json.loads(project.run("stack", "export", "--stack", stack).stdout)["deployment"]
                            .get("resources", [])) for stack in teams)  # the teams of the measured up
        if not floor:
            return {"apps": count, "teams": len(teams), "parallel": parallel, "up s": round(up_platform + up_teams, 1),
                    "preview platform s": preview_platform, "preview team s": preview_team,
                    "preview all s": preview_all, "one app s": one_app, "teams' resources": resources,
                    "PR preview of a refactor: s, team stacks": pr_refactor,
                    "PR preview of one app: s, team stacks": pr_one_app,
                    "one team: no-op up s": team_up, "one team: up s": with_checkpoints,
                    "one team: up without checkpoints s": without_checkpoints}
        floors = floor_project(project, vault.address, vault.root_token, count, per_team)
        floor_up = wall(lambda: [project.run("--cwd", str(project.root.parent / "floor"), "up", "--yes",
                                             "--skip-preview", "--stack", stack, *flags, timeout=3600)
                                 for stack in floors])
        floor_preview = wall(lambda: [project.run("--cwd", str(project.root.parent / "floor"), "preview",
                                                  "--stack", stack, *flags, timeout=3600) for stack in floors])
        floor_resources = sum(len(json.loads(project.run("--cwd", str(project.root.parent / "floor"), "stack",
                                                         "export", "--stack", stack).stdout)["deployment"]
                                  .get("resources", [])) for stack in floors)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    return {"apps": count, "teams": len(teams), "jobs": jobs, "parallel": parallel,
            "up s": round(up_platform + up_teams, 1), "up platform s": up_platform,
            "preview platform s": preview_platform, "preview team s": preview_team, "preview all s": preview_all,
            "PR preview of a refactor: s, team stacks": pr_refactor,
            "PR preview of one app: s, team stacks": pr_one_app,
            "one app s": one_app, "largest stack resources": largest, "largest process MiB": peak,
            "teams' resources": resources, "teams' up s": up_teams, "teams' preview s": round(preview_all -
                                                                                              preview_platform, 1),
            "one team: offline plan s": program, "one team: no-op up s": team_up, "one team: up s": with_checkpoints,
            "one team: up without checkpoints s": without_checkpoints,
            "floor resources": floor_resources, "floor up s": floor_up, "floor preview s": floor_preview,
            "up / floor per resource": round((up_teams / resources) / (floor_up / floor_resources), 2),
            "preview / floor per resource": round(((preview_all - preview_platform) / resources)
                                                  / (floor_preview / floor_resources), 2)}


def sweep(parallels: list[int], per_team: int, rounds: int, directory: Path) -> dict[str, Any]:
    """The ``up`` from empty of a new team's stack of ``per_team`` applications with each ``--parallel``,
    interleaved over ``rounds`` (so the machine's other load falls on every value alike): the best and
    the median wall time of each."""
    tools, missing = find_tools()
    if tools is None:
        raise SystemExit(f"the real tools are missing: {', '.join(missing)}")
    vault = VaultServer(tools.which("vault"), directory / "vault")
    times: dict[int, list[float]] = {parallel: [] for parallel in parallels}
    with running(vault):
        project = split_project(tools, directory, vault)
        project.run("up", "--yes", "--skip-preview", "--stack", STACK, "--non-interactive", timeout=3600)
        runs = [parallel for _ in range(rounds) for parallel in parallels]
        write_apps(project.root, len(runs) * per_team, per_team=per_team)
        for team, parallel in enumerate(runs):
            stack = f"{STACK}.team-{team}"
            project.platformctl("team-stacks", STACK)
            project.run("stack", "init", stack)
            arguments = ("up", "--yes", "--skip-preview", "--stack", stack, "--non-interactive", "--parallel",
                         str(parallel))
            times[parallel].append(wall(partial(project.run, *arguments, timeout=3600)))
    return {"apps a stack": per_team, "rounds": rounds,
            **{f"--parallel {p}: best, median s": [min(t), sorted(t)[len(t) // 2]] for p, t in times.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("counts", nargs="+", type=int)
    parser.add_argument("--per-team", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=1, help="team stacks run at a time")
    parser.add_argument("--parallel", type=int, help="the CLI's --parallel (its default: 8)")
    parser.add_argument("--no-floor", action="store_true", help="skip the flat floor's stacks")
    parser.add_argument("--sweep", help="instead: compare these --parallel values (4,8,16) on a new team's up")
    parser.add_argument("--rounds", type=int, default=3, help="with --sweep: runs of each value, interleaved")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root, as the end-to-end tests")
    if args.sweep:
        with tempfile.TemporaryDirectory(prefix="bench-") as directory:
            print(json.dumps(sweep([int(p) for p in args.sweep.split(",")], args.per_team, args.rounds,
                                   Path(directory))), flush=True)
        return
    for count in args.counts:
        with tempfile.TemporaryDirectory(prefix="bench-") as directory:
            print(json.dumps(measure(count, args.per_team, args.jobs, args.parallel, Path(directory),
                                     floor=not args.no_floor)), flush=True)


if __name__ == "__main__":
    main()
