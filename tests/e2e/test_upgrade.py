"""Upgrade: the dev stack as the previous release's program applied it, taken over by this one. The
preview replaces or deletes no protected resource (read from ``pulumi preview --json``), ``up``
succeeds, and the stack then holds still.

The previous release is the latest tag, else main's merge-base, else the commit named in
``tests/e2e/previous-release`` (main itself, as CI tests it, has no merge-base of its own): bump that file,
or tag, at each release. It names the last release that landed on main (its team stacks are taken
over by ``tests/e2e/test_team_stacks.py`` too); a release before the one whose ``Pulumi.yaml`` the real
CLI accepts (and whose logins can point at the tests' issuer) could not be run at all.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from platformctl.adapters.engine import ROOT
from tests.e2e.conftest import kube_local
from tests.e2e.dev import NEEDS_KWOK, NEEDS_ROOT, applied_dev, point_logins_at, stack_secrets
from tests.e2e.servers import Cluster, KubeCluster
from tests.e2e.tools import Tools
from tests.support import project_files

PREVIOUS_RELEASE_FILE = Path(__file__).resolve().parent / "previous-release"
# Resource operations that destroy what a resource holds.
DESTRUCTIVE = {"replace", "create-replacement", "delete-replaced", "delete", "discard"}


def git(*arguments: str) -> str:
    result = subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def previous_release() -> str:
    """The commit of the previous release (see the module's docstring)."""
    head = git("rev-parse", "HEAD")
    tag = git("describe", "--tags", "--abbrev=0", "HEAD^")
    if tag and git("rev-parse", f"{tag}^{{commit}}") != head:
        return git("rev-parse", f"{tag}^{{commit}}")
    base = git("merge-base", "HEAD", "origin/main")
    if base and base != head:
        return base
    return PREVIOUS_RELEASE_FILE.read_text().strip()


@pytest.fixture(scope="module")
def own_cluster(cluster: Cluster, request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """A cluster of the module's own, like the session's (the dev stack of the other modules may be in it)."""
    if cluster.runs_pods:
        pytest.skip(NEEDS_KWOK)
    with kube_local(request.getfixturevalue("kube_tools"), tmp_path_factory.mktemp("kube-upgrade")) as kube:
        yield kube


def release_tree(commit: str, directory: Path) -> Path:
    """The project's files at ``commit``."""
    directory.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)
    return directory


def take_over(root: Path) -> None:
    """Replaces the copy's files with this working tree's, as the release's pull request does: the code
    and the stack files, the stack's own settings (its passphrase salt, what `pulumi config set` put
    there) kept by the caller."""
    wanted = set(project_files())
    for directory, subdirectories, files in os.walk(root):
        if Path(directory) == root:
            subdirectories[:] = [name for name in subdirectories if name != "venv"]
        for name in files:
            path = Path(directory) / name
            if path.relative_to(root).as_posix() not in wanted:
                path.unlink()
    for name in wanted:
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ROOT / name).read_bytes())


def test_the_previous_releases_state_is_taken_over_without_losing_anything(
        tools: Tools, own_cluster: KubeCluster, chart_repository: dict[str, str], tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip(NEEDS_ROOT)
    release = previous_release()
    assert re.fullmatch(r"[0-9a-f]{40}", release), release
    source = release_tree(release, tmp_path / "release")
    with applied_dev(tools, own_cluster, chart_repository, tmp_path / "dev", source=source) as dev:
        project = dev.project
        stack_file = project.root / "stacks" / "Pulumi.dev.yaml"
        applied_config: dict[str, Any] = yaml.safe_load(stack_file.read_text())
        state = yaml.safe_load(project.run("stack", "export", "--stack", "dev").stdout)
        protected = {resource["urn"] for resource in state["deployment"]["resources"] if resource.get("protect")}
        assert protected

        take_over(project.root)
        # The stack's own settings survive the release: its salt, the address and the secrets set by hand.
        document = yaml.safe_load(stack_file.read_text())
        document["encryptionsalt"] = applied_config["encryptionsalt"]
        document["config"].update({key: value for key, value in applied_config["config"].items()
                                   if (isinstance(value, dict) and "secure" in value) or key == "vault:address"})
        stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
        point_logins_at(project, dev.issuer)
        for key, value in stack_secrets("dev", project.root).items():
            if key not in document["config"]:
                project.run("config", "set", "--stack", "dev", "--secret", key, value)

        preview = project.preview("dev")
        destroyed = sorted(f"{step['op']} {step['urn'].split('::')[-1]}" for step in preview["steps"]
                           if step["op"] in DESTRUCTIVE and step["urn"] in protected)
        assert destroyed == []
        project.up("dev")
        project.run("preview", "--stack", "dev", "--expect-no-changes", "--non-interactive")
        assert dev.vault.client().secrets.database.generate_credentials("api-role")["data"]["username"]
