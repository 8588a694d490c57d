"""A copy of this repository run by the real Pulumi CLI: a local file backend, a passphrase secrets
provider and a Pulumi home of its own, the tools first on ``PATH`` and nothing downloaded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from platformctl.adapters.engine import ROOT
from tests.e2e.tools import Tools
from tests.support import repository_copy

PASSPHRASE = "vault-platform-e2e"
# What a developer's or CI's shell may hold that would change what the program or the provider does.
AMBIENT = ("VAULT_ADDR", "VAULT_TOKEN", "VAULT_CACERT", "KUBECONFIG", "TERRAFORM_VAULT_AUTH_JWT", "PULUMI_CONFIG",
           "PULUMI_ACCESS_TOKEN", "PULUMI_BACKEND_URL", "PULUMI_HOME", "HTTPS_PROXY", "https_proxy",
           "VAULT_PLATFORM_CI_ROLE")


class PulumiFailed(AssertionError):
    """A CLI command that exited non-zero; the message holds its output."""


class PulumiProject:
    """``pulumi`` in a copy of the repository (its ``venv`` is this one's)."""

    def __init__(self, tools: Tools, directory: Path, environment: Mapping[str, str] | None = None,
                 source: Path | None = None) -> None:
        """``source``: another tree of the project (a release's) to copy instead of this working tree."""
        if source is None:
            self.root = repository_copy(directory / "repository")
        else:
            self.root = Path(shutil.copytree(source, directory / "repository"))
            (self.root / "venv").symlink_to(ROOT / "venv")
        (directory / "state").mkdir()
        self.environment = {key: value for key, value in os.environ.items() if key not in AMBIENT}
        self.environment.update({
            "PATH": os.pathsep.join([*(str(path) for path in tools.path), os.environ.get("PATH", "")]),
            "PULUMI_HOME": str(directory / "home"),
            "PULUMI_BACKEND_URL": f"file://{directory / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_SKIP_CONFIRMATIONS": "true",
            **(environment or {}),
        })
        self.pulumi = str(tools.which("pulumi"))

    def run(self, *arguments: str, check: bool = True, timeout: float = 600,
            environment: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``pulumi <arguments>``; ``environment`` adds variables for this run only (a CI job's login)."""
        result = subprocess.run([self.pulumi, *arguments], cwd=self.root, capture_output=True, text=True, check=False,
                                env={**self.environment, **(environment or {})}, timeout=timeout)
        if check and result.returncode != 0:
            raise PulumiFailed(f"pulumi {' '.join(arguments)} exited {result.returncode}:\n"
                               f"{result.stdout[-6000:]}\n{result.stderr[-4000:]}")
        return result

    def init(self, stack: str, config: Mapping[str, str], secrets: Mapping[str, str]) -> None:
        """``pulumi stack init`` on the stack file as committed, then the values a deploy sets by hand."""
        self.run("stack", "init", stack, "--secrets-provider", "passphrase")
        for key, value in config.items():
            self.run("config", "set", "--stack", stack, key, value)
        for key, value in secrets.items():
            self.run("config", "set", "--stack", stack, "--secret", key, value)

    def stack_config(self, stack: str) -> dict[str, Any]:
        """The ``config`` of the copy's stack file."""
        config: dict[str, Any] = yaml.safe_load((self.root / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
        return config

    def edit_stack(self, stack: str, changes: Mapping[str, Any]) -> None:
        """Sets top-level config keys in the copy's stack file (what a pull request would change)."""
        path = self.root / "stacks" / f"Pulumi.{stack}.yaml"
        document = yaml.safe_load(path.read_text())
        document["config"].update(changes)
        path.write_text(yaml.safe_dump(document, sort_keys=False))

    def preview(self, stack: str, *extra: str) -> dict[str, Any]:
        """``pulumi preview --json``: its steps and diagnostics (the run must succeed)."""
        result = self.run("preview", "--stack", stack, "--json", "--non-interactive", *extra)
        preview: dict[str, Any] = json.loads(result.stdout)
        return preview

    def up(self, stack: str, *extra: str, check: bool = True, timeout: float = 600,
           environment: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.run("up", "--stack", stack, "--yes", "--skip-preview", "--non-interactive", *extra, check=check,
                        timeout=timeout, environment=environment)

    def platformctl(self, *arguments: str, environment: Mapping[str, str] | None = None) -> str:
        """What ``platformctl <arguments>`` prints, run in the copy (it must succeed)."""
        result = subprocess.run([str(self.root / "venv" / "bin" / "python"), "-m", "platformctl", *arguments],
                                cwd=self.root, env={**self.environment, **(environment or {})}, capture_output=True,
                                text=True, check=False, timeout=600)
        if result.returncode != 0:
            raise AssertionError(f"platformctl {' '.join(arguments)} exited {result.returncode}:\n{result.stderr}")
        return result.stdout

    def offline_plan(self, stack: str) -> dict[str, Any]:
        """What ``bin/plan <stack> --json`` prints for the copy's stack file (the mock engine)."""
        plan: dict[str, Any] = json.loads(self.platformctl("plan", stack, "--json"))
        return plan

    def access(self, stack: str) -> dict[str, Any]:
        """``platformctl access <stack> --json`` for the copy's stack file."""
        access: dict[str, Any] = json.loads(self.platformctl("access", stack, "--json"))
        return access


def declared_names(preview: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(type, name) of every resource a preview's steps name, but the stack itself and default providers."""
    names = set()
    for step in preview.get("steps", []):
        urn: str = step["urn"]
        type_token, name = urn.split("::")[-2].split("$")[-1], urn.split("::")[-1]
        if type_token == "pulumi:pulumi:Stack" or (type_token.startswith("pulumi:providers:")
                                                   and name.startswith("default")):
            continue
        names.add((type_token, name))
    return names


def planned_names(plan: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(type, name) of every resource the offline plan declares."""
    return {(resource["type"], name) for name, resource in plan["resources"].items()}
