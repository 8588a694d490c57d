"""``plan`` and ``diff`` as a platform engineer runs them on a branch: in a copy of the repository
whose stack file the test edits (``HEAD`` is the base). A config the spec refuses and a YAML slip
fail both commands with one message and no resource list."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import repository_copy

STAGING = "stacks/Pulumi.staging.yaml"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return repository_copy(tmp_path / "repo")


def platformctl(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "platformctl", *args], cwd=repo, capture_output=True, text=True,
                          check=False)


def append(repo: Path, text: str) -> int:
    """Appends ``text`` to the staging stack file's config; the line number of its last line."""
    path = repo / STAGING
    content = path.read_text().rstrip("\n") + "\n" + text
    path.write_text(content)
    return len(content.splitlines())


def test_a_yaml_slip_names_the_file_line_and_column_in_plan_and_diff(repo: Path) -> None:
    line = append(repo, "  vault-platform:kv:\n    maxVersions: 5\n     casRequired: true\n")
    for command in (["plan", "staging"], ["diff", "staging", "--base", "HEAD"]):
        result = platformctl(repo, *command)
        assert (result.returncode, result.stdout) == (2, ""), command
        assert re.fullmatch(rf"error: {STAGING}, line {line}, column 17: not valid YAML: mapping values are not "
                            r"allowed (here|in this context)\. Fix: .+\n", result.stderr), result.stderr
        assert "Traceback" not in result.stderr


def test_a_refused_config_fails_plan_and_diff_with_the_specs_message_and_no_resource_list(repo: Path) -> None:
    append(repo, "  vault-platform:replicaz: 3\n")
    plan = platformctl(repo, "plan", "staging")
    assert plan.returncode == 1
    (message,) = plan.stderr.splitlines()
    assert message.startswith("error: stack 'staging'")
    assert "vault-platform:replicaz" in message
    assert f"REFUSED: {message.removeprefix('error: ')}" in plan.stdout
    assert not [line for line in plan.stdout.splitlines() if line.lstrip().startswith("+ ")]
    diff = platformctl(repo, "diff", "staging", "--base", "HEAD")
    assert (diff.returncode, diff.stderr) == (1, plan.stderr)
    assert ("### Stack `staging`: refused\n\n**The program refuses this branch's config:** `stack 'staging'"
            in diff.stdout)
    assert not re.search(r"^#### (Added|Removed|Changed)", diff.stdout, re.MULTILINE)


def test_a_deleted_stack_file_shows_everything_it_declared_as_removed(repo: Path) -> None:
    (repo / STAGING).unlink()
    # An application file naming a stack without a file is refused: each drops it too (an application of
    # staging alone goes with it).
    for path in (repo / "apps").glob("*/*.yaml"):
        document = yaml.safe_load(path.read_text())
        document["environments"].pop("staging", None)
        if document["environments"]:
            path.write_text(yaml.safe_dump(document))
        else:
            path.unlink()
    diff = platformctl(repo, "diff", "--base", "HEAD")
    assert (diff.returncode, diff.stderr) == (0, "")
    staging = diff.stdout.split("### Stack `staging`: branch vs `HEAD`\n", 1)[1]
    assert re.match(r"\n#### Access changes|\n\*\*0 added, \d+ removed, 0 changed\*\*", staging)
    assert "- - `vault-cluster-release` (`kubernetes:helm.sh/v3:Release`)" in staging
    assert "(removed) loses" in diff.stdout.split("### Access changes", 1)[1].split("### Stack", 1)[0]
