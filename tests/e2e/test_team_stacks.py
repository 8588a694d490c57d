"""Issue 18, team stacks under the real CLI: an environment that states ``vault-platform:teamStacks`` is
applied as its own stack, then one stack per team (``platformctl team-stacks``), and a team's ``up``
killed midway (the CLI, its language host and its providers, with SIGKILL, as a lost runner) is
recovered by the next run, with no edit of the state: ``pulumi cancel`` (the dead run's lock), then
``pulumi up``. Nothing is lost: every application's role, policy and secret is in Vault, and each
secret holds the value its state holds. An environment that declared its applications in its own stack
turns team stacks on with ``platformctl move-to-team-stacks``, and Vault keeps every object as it was.

The Vault is the benchmarks' (:mod:`benchmarks.real_cli`): prod's rules on an external Vault, without
the servers of its own the database, snapshots and logins need."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac  # type: ignore[import-untyped]
import pytest

from benchmarks.real_cli import STACK, P, write_apps
from benchmarks.team_stacks import split_project
from platformctl.adapters.engine import ROOT
from tests.e2e.dev import NEEDS_ROOT
from tests.e2e.project import PulumiProject
from tests.e2e.servers import VaultServer, audit_log_entries, running, wait_until
from tests.e2e.test_upgrade import previous_release, release_tree
from tests.e2e.tools import Tools

APPS, PER_TEAM = 48, 24
PROGRAM_CODE = ("__main__.py", "components", "environment", "render", "vaultmodel", "platformctl", "policies")
"""What a release changes of a team stack's project (its stack and application files stay)."""
TEAMS = [f"{STACK}.team-0", f"{STACK}.team-1"]


@dataclass
class Split:
    project: PulumiProject
    vault: VaultServer
    audit_log: Path


@pytest.fixture(scope="module")
def split(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Split]:
    if os.geteuid() != 0:
        pytest.skip(NEEDS_ROOT)
    directory = tmp_path_factory.mktemp("team-stacks")
    vault = VaultServer(tools.which("vault"), directory / "vault")
    with running(vault):
        project = split_project(tools, directory, vault)
        write_apps(project.root, APPS, per_team=PER_TEAM)
        yield Split(project, vault, directory / "vault-audit.log")


def state(project: PulumiProject, stack: str) -> dict[str, Any]:
    deployment: dict[str, Any] = json.loads(project.run("stack", "export", "--stack", stack, "--show-secrets")
                                            .stdout)["deployment"]
    return deployment


def plaintext(value: Any) -> str:
    """A secret output of ``stack export --show-secrets``: ``{<signature>: ..., "plaintext": <JSON>}``."""
    return str(json.loads(value["plaintext"]) if isinstance(value, dict) else value)


def test_the_environment_then_each_team_is_applied(split: Split) -> None:
    project = split.project
    assert project.platformctl("team-stacks", STACK).split() == TEAMS
    for stack in TEAMS:
        project.run("stack", "init", stack)
    project.up(STACK)
    platform = {resource["type"] for resource in state(project, STACK)["resources"]}
    assert "vault:kubernetes/authBackendRole:AuthBackendRole" not in platform  # the teams' alone
    project.up(TEAMS[0])
    roles = split.vault.client().list("auth/kubernetes/role")["data"]["keys"]
    assert sorted(roles) == sorted(f"app-{i}" for i in range(PER_TEAM))


def test_a_teams_up_killed_midway_is_recovered_by_the_next_run_and_loses_nothing(split: Split) -> None:
    project, team = split.project, TEAMS[1]
    before = len(audit_log_entries(split.audit_log))
    run = subprocess.Popen([project.pulumi, "up", "--stack", team, "--yes", "--skip-preview", "--non-interactive"],
                           cwd=project.root, env=project.environment, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # Killed once a third of the team's secrets are written, while others are in flight.
        wait_until(lambda: sum(entry.get("type") == "response" and entry["request"]["path"].startswith(
            "secret/data/production/app-") for entry in audit_log_entries(split.audit_log)[before:]) >= PER_TEAM // 3,
                   120, "a third of the team's secrets written")
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    written = len(state(project, team).get("resources", []))
    assert 0 < written < 4 * PER_TEAM  # it did stop midway

    locked = project.run("up", "--stack", team, "--yes", "--skip-preview", "--non-interactive", check=False)
    assert locked.returncode != 0
    assert "the stack is currently locked" in locked.stdout + locked.stderr
    login = {"VAULT_TOKEN": split.vault.root_token}
    resumed = project.platformctl("resume", team, environment=login)
    assert re.fullmatch(rf"{team}: \d+ pending create\(s\) cleared for the next up; \d+ secret\(s\) the lost "
                        r"run wrote deleted, to be written again as their first version\n", resumed), resumed
    assert project.platformctl("resume", team, environment=login) == f"{team}: nothing pending\n"
    project.up(team)

    # As the workflows preview: with the guardrails pack (its virtualenv: the project's, which pins it).
    (project.root / "policies" / "guardrails" / "venv").symlink_to(project.root / "venv")
    for stack in [STACK, *TEAMS]:
        project.run("preview", "--stack", stack, "--expect-no-changes", "--non-interactive",
                    "--policy-pack", "policies/guardrails")
    client = split.vault.client()
    assert sorted(client.list("auth/kubernetes/role")["data"]["keys"]) == sorted(f"app-{i}" for i in range(APPS))
    policies = client.sys.list_policies()["data"]["policies"]
    assert {f"app-app-{i}" for i in range(APPS)} <= set(policies)
    generated = {plaintext(resource["outputs"]["result"]) for resource in state(project, team)["resources"]
                 if resource["type"] == "random:index/randomPassword:RandomPassword"}
    for i in range(PER_TEAM, APPS):
        secret = client.secrets.kv.v2.read_secret_version(path=f"production/app-{i}", mount_point="secret",
                                                          raise_on_deleted_version=True)["data"]
        assert secret["data"]["token"] in generated, f"app-{i}: Vault holds a value its state does not"


def test_team_stacks_applied_by_the_previous_release_are_taken_over_without_replacing_anything(
        tools: Tools, tmp_path: Path) -> None:
    """The previous release's team stacks, applied by its program, then run by this one: each resource
    keeps its identity (the aliases of renamed ones), so nothing is replaced or deleted (a replaced KV
    secret would be written anew with new values), and the stacks then hold still."""
    if os.geteuid() != 0:
        pytest.skip(NEEDS_ROOT)
    release = release_tree(previous_release(), tmp_path / "release")
    if not (release / "components" / "team_apps.py").is_file():
        pytest.skip("the previous release has no team stacks")
    vault = VaultServer(tools.which("vault"), tmp_path / "vault")
    with running(vault):
        project = split_project(tools, tmp_path, vault, source=release)
        write_apps(project.root, 4, per_team=2)
        teams = project.platformctl("team-stacks", STACK).split()
        for stack in teams:
            project.run("stack", "init", stack)
        for stack in [STACK, *teams]:
            project.up(stack)
        applied = {stack: {r["urn"]: r.get("outputs", {}) for r in state(project, stack)["resources"]}
                   for stack in teams}

        for code in PROGRAM_CODE:  # the release's pull request: this working tree's code, the same files
            shutil.rmtree(project.root / code, ignore_errors=True)
            (project.root / code).unlink(missing_ok=True)
            copy = shutil.copytree if (ROOT / code).is_dir() else shutil.copy2
            copy(ROOT / code, project.root / code)
        for stack in [STACK, *teams]:
            preview = project.preview(stack)
            assert sorted(f"{step['op']} {step['urn']}" for step in preview["steps"]
                          if step["op"] not in ("same", "refresh")) == [], stack
            project.up(stack)
            project.run("preview", "--stack", stack, "--expect-no-changes", "--non-interactive")
        for stack in teams:
            kept = [r for r in state(project, stack)["resources"]
                    if r["type"] == "random:index/randomPassword:RandomPassword"]
            assert kept
            assert sorted(plaintext(r["outputs"]["result"]) for r in kept) == sorted(
                plaintext(outputs["result"]) for urn, outputs in applied[stack].items()
                if urn.split("::")[-2].endswith("RandomPassword"))


def test_a_failed_updates_values_stay_in_the_state_and_the_deploys_refresh_applies_them(
        tools: Tools, tmp_path: Path) -> None:
    """Why every deploy and preview refreshes first. A failed update leaves in the state the values it
    meant to write: pulumi-terraform-bridge's ``Provider.Update`` returns the planned state of a failed
    apply as the resource's partial state (``initializationError``), and the engine keeps it. The next
    run then compares the program with that state, finds nothing to change on that field, and Vault
    keeps the old value (seen here without ``--refresh``: the role stayed at 3600 s). A refresh reads
    what Vault holds, and the change is applied."""
    if os.geteuid() != 0:
        pytest.skip(NEEDS_ROOT)
    vault = VaultServer(tools.which("vault"), tmp_path / "vault")
    with running(vault):
        project = split_project(tools, tmp_path, vault)
        write_apps(project.root, 2, per_team=2)
        (team,) = project.platformctl("team-stacks", STACK).split()
        project.run("stack", "init", team)
        project.up(STACK)
        project.up(team)
        write_apps(project.root, 1, ttl="30m", per_team=2)  # app-0's token TTL: 1h -> 30m

        # A token whose write of the role Vault refuses (as a policy mistake, a sealed or unreachable
        # server would): the provider configures, the write fails.
        client = vault.client()
        client.sys.create_or_update_policy("all-but-app-0", 'path "*" { capabilities = ["create", "read", '
                                           '"update", "delete", "list", "sudo"] }\n'
                                           'path "auth/kubernetes/role/app-0" { capabilities = ["read"] }')
        refused = client.auth.token.create(policies=["all-but-app-0"], ttl="10m")["auth"]["client_token"]
        project.run("config", "set", "--stack", team, "--secret", "vault:token", refused)
        failed = project.up(team, check=False)
        assert failed.returncode != 0
        assert "permission denied" in failed.stdout, failed.stdout[-3000:]
        (role,) = [r for r in state(project, team)["resources"] if r["urn"].endswith("kubernetes-auth-app-0")]
        assert (role["inputs"]["tokenTtl"], role["outputs"]["tokenTtl"]) == (3600, 1800)  # not applied, recorded
        assert vault.client().read("auth/kubernetes/role/app-0")["data"]["token_ttl"] == 3600

        project.run("config", "set", "--stack", team, "--secret", "vault:token", vault.root_token)
        project.up(team, "--refresh", "--run-program")  # as the workflows run it
        assert vault.client().read("auth/kubernetes/role/app-0")["data"]["token_ttl"] == 1800
        project.run("preview", "--stack", team, "--refresh", "--run-program", "--expect-no-changes",
                    "--non-interactive")


def vault_objects(client: hvac.Client, apps: range) -> dict[str, Any]:
    """What Vault holds of ``apps``: each role's settings, each policy's rules, and each secret's value and
    versions."""
    objects: dict[str, Any] = {}
    for i in apps:
        objects[f"role app-{i}"] = client.read(f"auth/kubernetes/role/app-{i}")["data"]
        objects[f"policy app-app-{i}"] = client.sys.read_policy(name=f"app-app-{i}")["data"]["rules"]
        path = f"production/app-{i}"
        objects[f"secret {path}"] = client.secrets.kv.v2.read_secret_version(
            path=path, mount_point="secret", raise_on_deleted_version=True)["data"]["data"]
        metadata = client.secrets.kv.v2.read_secret_metadata(path=path, mount_point="secret")["data"]
        objects[f"versions {path}"] = tuple(sorted(metadata["versions"]))
    return objects


def moved_text(team: int, apps: range) -> list[str]:
    """What ``move-to-team-stacks`` prints of what it moves to one team's stack, by URN (a kind's component,
    then its resource's type, then its name)."""
    names = [("policies", "app-app-{}"), ("kubernetes-auth", "app-{}"), ("kv", "app-{}-token"), ("kv", "app-{}")]
    return [f"{STACK} -> {STACK}.team-{team}: {4 * len(apps)} moved now, 0 before",
            *(f"  vault-{kind}-{name.format(i)} -> apps-team-{team}-{kind}-{name.format(i)}"
              for kind, name in names for i in apps)]


def test_an_environment_turning_team_stacks_on_moves_its_applications_to_them_and_loses_nothing(
        tools: Tools, tmp_path: Path) -> None:
    """Issue 18's migration: an environment applied with its applications in its own stack states teamStacks,
    and ``platformctl move-to-team-stacks`` moves their state (``pulumi state move``) before any ``up``. Then
    no stack's preview creates, deletes or replaces a Vault object (each team's creates its component
    alone), every stack applies and then holds still, and Vault holds the same roles, policies and secrets:
    each secret's value unchanged and never written again (its one version)."""
    if os.geteuid() != 0:
        pytest.skip(NEEDS_ROOT)
    vault = VaultServer(tools.which("vault"), tmp_path / "vault")
    with running(vault):
        project = split_project(tools, tmp_path, vault, team_stacks=False)
        write_apps(project.root, 6, per_team=3)
        project.up(STACK)
        assert project.platformctl("team-stacks", STACK) == ""  # the applications are the environment's
        applied = vault_objects(vault.client(), range(6))
        assert {value for key, value in applied.items() if key.startswith("versions")} == {("1",)}

        before = project.run("stack", "export", "--stack", STACK).stdout

        project.edit_stack(STACK, {f"{P}teamStacks": True})
        moved = [*moved_text(0, range(3)), *moved_text(1, range(3, 6))]
        assert project.platformctl("move-to-team-stacks", STACK).splitlines() == moved
        # As if each move had stopped between its two saves (the team's state, then the environment's): the
        # next run drops from the environment's state what the teams' hold, dependents first.
        (tmp_path / "before.json").write_text(before)
        project.run("stack", "import", "--stack", STACK, "--file", str(tmp_path / "before.json"))
        assert project.platformctl("move-to-team-stacks", STACK).splitlines() == moved
        assert project.platformctl("move-to-team-stacks", STACK) == (
            f"{STACK}: nothing to move: its state holds only what its stack declares\n")
        for stack in [STACK, *TEAMS]:
            steps = [f"{step['op']} {step['urn'].rpartition('::')[2]}" for step in project.preview(stack)["steps"]
                     if step["op"] not in ("same", "refresh")]
            assert steps == ([] if stack == STACK else [f"create apps-{stack.partition('.')[2]}"]), stack
        # As the workflows preview: with the guardrails pack (its virtualenv: the project's, which pins it).
        (project.root / "policies" / "guardrails" / "venv").symlink_to(project.root / "venv")
        for stack in [STACK, *TEAMS]:
            project.up(stack)
            project.run("preview", "--stack", stack, "--expect-no-changes", "--non-interactive",
                        "--policy-pack", "policies/guardrails")
        assert vault_objects(vault.client(), range(6)) == applied
