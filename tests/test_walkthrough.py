"""The docs' "Onboard an application" (``docs/onboard-an-application.md``), followed step by step in a
copy of the repository: the stack edit it shows is merged into the stack file it names, every command
of its ``sh`` blocks runs (``bin/test`` excepted: it is the suite this test belongs to), and every
command of its ``text`` block (what is done outside the repository) is one the tools print. A page
that drifts from the tools fails here."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from platformctl.adapters.engine import ROOT
from tests.support import TEST_STACKS, repository_copy

PAGE = "docs/onboard-an-application.md"
SECTION = "# Onboard an application"
PLATFORMCTL = "venv/bin/python -m platformctl "
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
FILE = re.compile(r"`((?:apps|stacks)/[\w./-]+\.yaml)`")


def section() -> str:
    """The page, which is the section (its heading first)."""
    page = (ROOT / PAGE).read_text()
    assert page.startswith(f"{SECTION}\n"), f"{PAGE} does not start with {SECTION!r}"
    return page


def walkthrough() -> list[tuple[str, str, str]]:
    """``(info string, body, file)`` of each fenced block of the onboarding page, in order;
    ``file`` is the last file the text before a block names (the file a ``yaml`` block goes in)."""
    text = section()
    blocks = []
    for match in FENCE.finditer(text):
        named = FILE.findall(text[:match.start()])
        blocks.append((match.group(1), match.group(2), named[-1] if named else ""))
    return blocks


def merge(into: dict[str, Any], addition: dict[str, Any]) -> None:
    """``addition`` merged into ``into`` as the page says: maps get its keys, lists its items."""
    for key, value in addition.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        elif isinstance(value, list) and isinstance(into.get(key), list):
            into[key].extend(value)
        else:
            assert into.get(key) is None, f"the walkthrough would overwrite {key!r}"
            into[key] = value


def run(repo: Path, command: str) -> str:
    result = subprocess.run(["bash", "-c", command], cwd=repo, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{command!r} failed ({result.returncode}):\n{result.stderr}"
    assert result.stderr == "", f"{command!r}:\n{result.stderr}"
    return result.stdout


@dataclass(frozen=True)
class Followed:
    """The walkthrough, followed."""

    outputs: dict[str, str]
    """Each ``sh`` command -> its output."""
    app: dict[str, Any]
    """The application's file as it ends, as staging reads it: its name (the file's), its common keys
    and staging's own."""


@pytest.fixture(scope="module")
def followed(tmp_path_factory: pytest.TempPathFactory) -> Followed:
    """Each ``sh`` command of the walkthrough -> its output, run in order on a copy of the repository
    whose ``origin/main`` is the commit before the change; each ``yaml`` block is merged, when its
    turn comes, into the file the text before it names."""
    repo = repository_copy(tmp_path_factory.mktemp("walkthrough") / "repo")
    # The walkthrough starts from the test stacks and applications, not this week's committed ones
    # (which may have onboarded an application of the same name by now), as the base commit.
    for directory in ("stacks", "apps"):
        shutil.rmtree(repo / directory, ignore_errors=True)
        shutil.copytree(TEST_STACKS / directory, repo / directory)
    for git in (["add", "-A"], ["-c", "user.name=tests", "-c", "user.email=tests@localhost", "commit", "-q",
                                "-m", "the test stacks as base"]):
        subprocess.run(["git", *git], cwd=repo, check=True, capture_output=True)
    subprocess.run(["git", "update-ref", "refs/remotes/origin/main", "HEAD"], cwd=repo, check=True)
    outputs = {}
    for info, body, file in walkthrough():
        if info == "yaml":
            path = repo / file
            document = yaml.safe_load(path.read_text()) if path.is_file() else {}
            merge(document, yaml.safe_load(body))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump(document, sort_keys=False))
        for command in (line.strip() for line in body.splitlines()):
            # The outside steps that are offline tools run too (the DBA's SQL); the rest need a
            # cluster or the Pulumi CLI.
            if (info == "sh" and command and command != "bin/test") or (
                    info == "text" and command.startswith(PLATFORMCTL)):
                outputs[command] = run(repo, command)
    file, _ = app_file()
    document = yaml.safe_load((repo / file).read_text())
    return Followed(outputs, {"name": Path(file).stem, **document, **(document["environments"]["staging"] or {})})


def app_file() -> tuple[str, dict[str, Any]]:
    """The application's file the walkthrough completes: its path and what the page adds to it."""
    [(file, body)] = [(file, body) for info, body, file in walkthrough() if info == "yaml" and
                      file.startswith("apps/")]
    return file, dict(yaml.safe_load(body))


def test_the_walkthrough_shows_these_steps() -> None:
    commands = [line.strip() for info, body, _ in walkthrough() if info == "sh" for line in body.splitlines()]
    file, _ = app_file()
    app = Path(file).stem
    assert commands == [f"venv/bin/python -m platformctl new-app {Path(file).parent.name}/{app} --environments staging",
                        "bin/plan staging", f"bin/plan staging --app {app}", "bin/test",
                        "venv/bin/python -m platformctl diff staging --base origin/main"]


def test_every_command_runs_and_the_plan_lists_what_is_needed_outside(followed: Followed) -> None:
    plan = followed.outputs["bin/plan staging"]
    assert "REFUSED" not in plan
    assert "\nNeeds outside the repository (no `pulumi up` does these):\n" in plan


def test_the_app_view_shows_identity_policies_reach_and_annotations(followed: Followed) -> None:
    app = followed.app
    view = followed.outputs[f"bin/plan staging --app {app['name']}"]
    assert view.startswith(f"Application {app['name']!r} in stack 'staging'\n")
    assert f"  Kubernetes service account {app['namespace']}/{app['serviceAccount']}\n" in view
    assert f"  -> token TTL {app['tokenTtl']}, " in view
    reach = view.split("\nReach ", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    (grant,) = app["transitKeys"]
    assert sorted(reach) == sorted([
        f"  KV secret {app['kvPaths'][0]}: read on secret/data/{app['kvPaths'][0]}",
        f"  database role {app['databaseRole']}: read on database/creds/{app['databaseRole']}",
        *(f"  transit key {grant['key']}: update on transit/{op}/{grant['key']}" for op in grant["operations"]),
        f"  PKI role {app['certificate']['role']}: update on pki_int/issue/{app['certificate']['role']}"])
    annotations = yaml.safe_load(view.split("metadata.annotations):\n", 1)[1])
    assert annotations["vault.hashicorp.com/role"] == app["name"]
    issue = f"pki_int/issue/{app['certificate']['role']}"
    assert annotations["vault.hashicorp.com/agent-inject-secret-tls.crt"] == issue


def test_the_diff_shows_the_added_app_and_every_outside_step_the_page_lists(followed: Followed) -> None:
    app = followed.app
    comment = followed.outputs["venv/bin/python -m platformctl diff staging --base origin/main"]
    outside = comment.split("### Outside the repository\n", 1)[1].split("\n### ", 1)[0]
    [steps] = [body for info, body, _ in walkthrough() if info == "text"]
    for command in steps.splitlines():
        assert f"\n  {command}\n" in outside, command
    file, _ = app_file()
    # Until its team has a line in CODEOWNERS (on the base branch), the platform team approves.
    assert f"- `{file}` **added** (stacks `staging`); approval: `@vault-platform/platform-team`\n" in comment
    assert f"- + `vault-policies-app-{app['name']}` (`vault:index/policy:Policy`)" in comment
    assert f'  path "transit/encrypt/{app["transitKeys"][0]["key"]}" {{' in comment
    assert f"  | `boundServiceAccountNamespaces` | `[\"{app['namespace']}\"]` |" in comment


def test_the_dbas_sql_covers_the_new_schema(followed: Followed) -> None:
    [sql] = [output for command, output in followed.outputs.items() if " db-setup " in command]
    schema = followed.app["databaseRoles"][0]["grants"][0]["schema"]
    assert f'"{schema}"' in sql


def test_the_team_writes_its_file_and_the_platform_its_stack_file(followed: Followed) -> None:
    files = [file for info, _, file in walkthrough() if info == "yaml"]
    assert files == ["apps/orders/orders-api.yaml", "stacks/Pulumi.staging.yaml"]
    new_app = next(output for command, output in followed.outputs.items() if " new-app " in command)
    assert new_app.splitlines()[0] == "wrote apps/orders/orders-api.yaml (stacks: staging)"
    assert (followed.app["namespace"], followed.app["serviceAccount"]) == ("orders", "orders-api")
