"""The GitHub Actions workflows: valid YAML, clean under actionlint, and the delivery rules they carry
(no credentials where a fork's code runs, one deploy per stack at a time, dev -> staging -> prod)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = Path(sys.executable).parent / "actionlint"
FILES = sorted(WORKFLOWS.glob("*.yml"))


def load(name: str) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return document


def triggers(document: dict[Any, Any]) -> Any:
    return document[True]  # YAML 1.1 reads the key `on` as a boolean


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["steps"])


def actionlint(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # Shell and Python checks in run: steps need shellcheck and pyflakes, which are not pinned here.
    return subprocess.run([str(ACTIONLINT), "-no-color", "-oneline", "-shellcheck=", "-pyflakes=", *args],
                          cwd=ROOT, input=stdin, capture_output=True, text=True, check=False)


class TestLint:
    def test_workflow_files(self) -> None:
        assert [f.name for f in FILES] == ["deploy.yml", "pr-plan-diff-comment.yml", "pr-plan-diff.yml",
                                           "pr-preview.yml", "pulumi-up.yml"]

    @pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
    def test_parses_as_yaml(self, path: Path) -> None:
        document = yaml.safe_load(path.read_text())
        assert set(document) >= {"name", True, "jobs"}

    def test_actionlint_passes(self) -> None:
        result = actionlint(*(str(f.relative_to(ROOT)) for f in FILES))
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")

    def test_actionlint_reports_a_broken_workflow(self) -> None:
        broken = "on: push\njobs:\n  x:\n    runs-on: ${{ matrix.os }}\n    steps:\n      - run: echo\n"
        result = actionlint("-", stdin=broken)
        assert result.returncode == 1
        assert 'property "os" is not defined in object type' in result.stdout

    @pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
    def test_actions_are_pinned_to_a_release(self, path: Path) -> None:
        for uses in re.findall(r"uses:\s*(\S+)", path.read_text()):
            assert uses.startswith("./") or re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+\.\d+\.\d+", uses), uses


class TestPullRequests:
    def test_diff_runs_fork_code_without_credentials(self) -> None:
        document = load("pr-plan-diff.yml")
        assert triggers(document) == {"pull_request": None}
        assert document["permissions"] == {"contents": "read"}
        text = (WORKFLOWS / "pr-plan-diff.yml").read_text()
        assert "secrets." not in text
        assert "id-token" not in text
        assert "pull_request_target" not in text

    def test_diff_runs_the_project_command_per_stack(self) -> None:
        job = load("pr-plan-diff.yml")["jobs"]["diff"]
        assert job["strategy"]["matrix"]["stack"] == ["dev", "staging", "prod"]
        commands = "\n".join(step.get("run", "") for step in steps(job))
        assert 'python -m platformctl diff "$STACK" --base "origin/$BASE_REF"' in commands

    def test_comment_is_posted_from_the_base_without_running_pr_code(self) -> None:
        document = load("pr-plan-diff-comment.yml")
        assert triggers(document) == {"workflow_run": {"workflows": ["Pull request plan diff"],
                                                       "types": ["completed"]}}
        job = document["jobs"]["comment"]
        assert job["permissions"] == {"actions": "read", "pull-requests": "write"}
        assert [step["uses"].split("@")[0] for step in steps(job)] == ["actions/download-artifact",
                                                                       "actions/github-script"]
        script = steps(job)[1]["with"]["script"]
        assert "updateComment" in script
        assert "const marker = '<!-- vault-platform:plan-diff -->';" in script

    def test_preview_has_credentials_only_for_branches_of_this_repository(self) -> None:
        job = load("pr-preview.yml")["jobs"]["preview"]
        assert job["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
        assert job["permissions"]["id-token"] == "write"
        uses = [step.get("uses", step.get("name", "")).split("@")[0] for step in steps(job)]
        assert uses.index("Preflight the KMS auto-unseal key") < uses.index("pulumi/actions")
        preview = steps(job)[-1]["with"]
        assert (preview["command"], preview["policyPacks"], preview["comment-on-pr"]) == (
            "preview", "policies/guardrails", True)


class TestDeploys:
    def test_dev_then_staging_then_prod_on_main(self) -> None:
        document = load("deploy.yml")
        assert triggers(document) == {"push": {"branches": ["main"]}}
        jobs = document["jobs"]
        assert [(name, job["with"]["stack"], job.get("needs")) for name, job in jobs.items()] == [
            ("dev", "dev", None), ("staging", "staging", "dev"), ("prod", "prod", "staging")]
        assert all(job["permissions"] == {"contents": "read", "id-token": "write"} for job in jobs.values())

    def test_each_stack_in_its_environment_one_run_at_a_time(self) -> None:
        job = load("pulumi-up.yml")["jobs"]["up"]
        assert job["environment"] == "${{ inputs.stack }}"
        assert job["concurrency"] == {"group": "pulumi-up-${{ inputs.stack }}", "cancel-in-progress": False}

    def test_oidc_preflight_before_preview_and_before_up(self) -> None:
        text = (WORKFLOWS / "pulumi-up.yml").read_text()
        assert "secrets." not in text
        labels = [step.get("with", {}).get("command") or step.get("name") or step["uses"]
                  for step in steps(load("pulumi-up.yml")["jobs"]["up"])]
        assert labels[3:] == [
            "aws-actions/configure-aws-credentials@v4.0.2",
            "Preflight the KMS auto-unseal key (before preview)", "preview",
            "Preflight the KMS auto-unseal key (before up)", "up"]
