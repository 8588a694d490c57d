"""The GitHub Actions workflows and CODEOWNERS: valid YAML, clean under actionlint, and the delivery rules
they carry (no credentials where a fork's code runs, a human approval before a branch's code gets
credentials, tests before any deploy, one deploy per stack at a time, dev -> staging -> prod, the whole
repository owned by the platform team)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from platformctl import codeowners

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
                                           "pr-preview.yml", "pulumi-up.yml", "test.yml"]

    @pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
    def test_parses_as_yaml(self, path: Path) -> None:
        document = yaml.safe_load(path.read_text())
        assert set(document) >= {"name", True, "jobs"}

    def test_actionlint_passes(self) -> None:
        result = actionlint(*(str(f.relative_to(ROOT)) for f in FILES))
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")

    def test_actionlint_accepts_the_runner_variable_not_an_unknown_label(self) -> None:
        job = "on: push\njobs:\n  x:\n    runs-on: {}\n    steps:\n      - run: echo\n"
        assert actionlint("-", stdin=job.format("${{ vars.DEPLOY_RUNNER_LABEL }}")).returncode == 0
        result = actionlint("-", stdin=job.format("[self-hosted, vault-platform]"))
        assert result.returncode == 1
        assert 'label "vault-platform" is unknown' in result.stdout

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

    def test_diff_runs_the_project_command_for_every_stack_and_fails_with_it(self) -> None:
        document = load("pr-plan-diff.yml")
        assert list(document["jobs"]) == ["diff"]
        job = document["jobs"]["diff"]
        run = next(step["run"] for step in steps(job) if "platformctl diff" in step.get("run", ""))
        # No stack list: the command diffs every stack file, a new one included.
        assert 'python -m platformctl diff --base "origin/$BASE_REF" > comment/comment.md || status=$?' in run
        assert run.rstrip().endswith('exit "$status"')
        assert steps(job)[-1]["uses"].split("@")[0] == "actions/upload-artifact"

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

    def test_preview_waits_for_an_approval_before_branch_code_gets_credentials(self) -> None:
        # The `<stack>-preview` environments have required reviewers: the job (checkout included)
        # starts only once a platform engineer approves it.
        job = load("pr-preview.yml")["jobs"]["preview"]
        assert job["environment"] == "${{ matrix.stack }}-preview"
        assert job["strategy"]["matrix"]["stack"] == ["dev", "staging", "prod"]
        assert "secrets." not in (WORKFLOWS / "pr-preview.yml").read_text()

    def test_the_diff_needs_no_approval_because_it_has_no_credentials(self) -> None:
        # The plan diff runs any pull request's code (forks too) without an approval: only safe
        # because it gets no credentials and no environment.
        job = load("pr-plan-diff.yml")["jobs"]["diff"]
        assert "environment" not in job
        assert "id-token" not in (WORKFLOWS / "pr-plan-diff.yml").read_text()


KUBECONFIG = ('echo "KUBECONFIG=$RUNNER_TEMP/kubeconfig" >> "$GITHUB_ENV"\n'
              'aws eks update-kubeconfig --name "$EKS_CLUSTER_NAME" --region "$AWS_REGION" '
              '--kubeconfig "$RUNNER_TEMP/kubeconfig"\n')


class TestClusterAccess:
    """The jobs that run `pulumi preview` or `up` talk to the EKS API and to Vault: an in-VPC runner,
    and a kubeconfig for the stack's cluster written after the AWS credentials, before the preview."""

    JOBS = [("pr-preview.yml", "preview"), ("pulumi-up.yml", "up")]

    @pytest.mark.parametrize(("name", "job"), JOBS)
    def test_runs_on_the_in_vpc_runner(self, name: str, job: str) -> None:
        assert load(name)["jobs"][job]["runs-on"] == "${{ vars.DEPLOY_RUNNER_LABEL }}"

    @pytest.mark.parametrize(("name", "job"), JOBS)
    def test_kubeconfig_after_credentials_before_the_preview(self, name: str, job: str) -> None:
        definition = load(name)["jobs"][job]
        assert definition["env"]["EKS_CLUSTER_NAME"] == "${{ vars.EKS_CLUSTER_NAME }}"
        assert definition["env"]["AWS_REGION"] == "${{ vars.AWS_REGION }}"
        labels = [step.get("name") or step["uses"].split("@")[0] for step in steps(definition)]
        write = labels.index("Write the kubeconfig for the stack's EKS cluster")
        assert steps(definition)[write]["run"] == KUBECONFIG
        assert labels.index("aws-actions/configure-aws-credentials") < write
        first_pulumi = next(i for i, step in enumerate(steps(definition))
                            if step.get("uses", "").startswith("pulumi/actions"))
        assert write < first_pulumi

    def test_github_hosted_jobs_never_get_cloud_credentials(self) -> None:
        # The jobs left on GitHub-hosted runners are the ones without credentials.
        hosted = sorted((path.name, name) for path in FILES for name, job in load(path.name)["jobs"].items()
                        if job.get("runs-on", "").startswith("ubuntu-"))
        assert hosted == [("pr-plan-diff-comment.yml", "comment"), ("pr-plan-diff.yml", "diff"), ("test.yml", "test")]
        assert all("id-token" not in (WORKFLOWS / name).read_text() for name, _ in hosted)


class TestDeploys:
    def test_tests_then_dev_then_staging_then_prod_on_main(self) -> None:
        document = load("deploy.yml")
        assert triggers(document) == {"push": {"branches": ["main"]}}
        jobs = document["jobs"]
        assert [(name, job["uses"], job.get("with", {}).get("stack"), job.get("needs"))
                for name, job in jobs.items()] == [
            ("test", "./.github/workflows/test.yml", None, None),
            ("dev", "./.github/workflows/pulumi-up.yml", "dev", "test"),
            ("staging", "./.github/workflows/pulumi-up.yml", "staging", "dev"),
            ("prod", "./.github/workflows/pulumi-up.yml", "prod", "staging")]
        assert jobs["test"]["permissions"] == {"contents": "read"}
        assert all(job["permissions"] == {"contents": "read", "id-token": "write"}
                   for name, job in jobs.items() if name != "test")

    def test_every_deploy_job_depends_on_the_tests(self) -> None:
        jobs = load("deploy.yml")["jobs"]

        def upstream(name: str) -> set[str]:
            needs = jobs[name].get("needs")
            names = [needs] if isinstance(needs, str) else list(needs or ())
            return set(names).union(*(upstream(n) for n in names))

        assert {name: "test" in upstream(name) for name in jobs} == {
            "test": False, "dev": True, "staging": True, "prod": True}

    def test_the_test_workflow_runs_bin_test_without_credentials(self) -> None:
        document = load("test.yml")
        assert triggers(document) == {"pull_request": None, "workflow_call": None}
        assert document["permissions"] == {"contents": "read"}
        job = document["jobs"]["test"]
        assert [step.get("run") for step in steps(job)] == [None, None, "bin/test"]
        text = (WORKFLOWS / "test.yml").read_text()
        assert "secrets." not in text
        assert "id-token" not in text

    def test_each_stack_in_its_environment_one_run_at_a_time(self) -> None:
        job = load("pulumi-up.yml")["jobs"]["up"]
        assert job["environment"] == "${{ inputs.stack }}"
        assert job["concurrency"] == {"group": "pulumi-up-${{ inputs.stack }}", "cancel-in-progress": False}

    def test_oidc_kubeconfig_preflight_before_preview_and_before_up(self) -> None:
        text = (WORKFLOWS / "pulumi-up.yml").read_text()
        assert "secrets." not in text
        labels = [step.get("with", {}).get("command") or step.get("name") or step["uses"]
                  for step in steps(load("pulumi-up.yml")["jobs"]["up"])]
        assert labels[3:] == [
            "aws-actions/configure-aws-credentials@v4.0.2",
            "Write the kubeconfig for the stack's EKS cluster",
            "Preflight the KMS auto-unseal key (before preview)", "Audience of the stack's Vault login",
            "OIDC token for Vault (before preview)", "preview",
            "Preflight the KMS auto-unseal key (before up)", "OIDC token for Vault (before up)", "up",
            "OIDC token for Vault (before rollout)", "Roll the Vault servers onto the new template"]

    def test_rollout_after_up_with_the_jobs_own_login_masked(self) -> None:
        rollout = steps(load("pulumi-up.yml")["jobs"]["up"])[-1]
        assert "env" not in rollout
        lines = rollout["run"].splitlines()
        assert lines[:3] == ['VAULT_TOKEN="$(python -m platformctl vault-login "$STACK")"',
                             'echo "::add-mask::$VAULT_TOKEN"', "export VAULT_TOKEN"]
        assert 'python -m platformctl rollout "$STACK" || status=$?' in lines
        assert "--dry-run" not in rollout["run"]

    @pytest.mark.parametrize(("status", "outcome"), [(0, 0), (1, 1), (2, 2), (3, 0)])
    def test_rollout_exit_codes(self, status: int, outcome: int, tmp_path: Path) -> None:
        # The step's own script, run by bash with a stand-in for python: the login prints a token, the
        # rollout exits with ``status``.
        script = steps(load("pulumi-up.yml")["jobs"]["up"])[-1]["run"]
        python = f'case "$3" in vault-login) echo s.token ;; *) exit {status} ;; esac'
        (tmp_path / "python").write_text(f"#!/bin/sh\n{python}\n")
        (tmp_path / "python").chmod(0o755)
        result = subprocess.run(["bash", "-e", "-c", script], env={"PATH": f"{tmp_path}:/usr/bin:/bin", "STACK": "dev"},
                                capture_output=True, text=True, check=False)
        assert result.returncode == outcome
        assert result.stdout.startswith("::add-mask::s.token\n")
        assert ("::warning title=Vault servers not rolled out::dev unseals by hand" in result.stdout) is (status == 3)


TEAM = "@vault-platform/platform-team"
OLD_CODEOWNERS = """\
/stacks/                @vault-platform/platform-team
/policies/              @vault-platform/platform-team
/.github/workflows/     @vault-platform/platform-team
/.github/CODEOWNERS     @vault-platform/platform-team
"""
"""What CODEOWNERS said before it covered the whole repository."""


def owners_of(text: str, path: str) -> list[str]:
    """The owners CODEOWNERS ``text`` gives ``path``: the last matching rule's, else none."""
    return list(codeowners.owners_of(codeowners.parse(text), path))


class TestCodeowners:
    TEXT = (ROOT / ".github" / "CODEOWNERS").read_text()
    # What runs with deploy credentials, or decides what does (the pack imports components/).
    DEPLOYED = ["__main__.py", "Pulumi.yaml", "components/rules.py", "components/render/acl.py",
                "platformctl/engine.py", "bin/test", "requirements.txt", "requirements-dev.txt", "constraints.txt",
                ".ci/run", "stacks/Pulumi.prod.yaml", "policies/guardrails/checks.py", "policies/acl/vault-iac.hcl",
                ".github/workflows/pulumi-up.yml", ".github/CODEOWNERS"]

    def test_the_platform_team_owns_everything_and_each_team_only_its_application_folder(self) -> None:
        (everything, *teams) = codeowners.parse(self.TEXT)
        assert (everything.pattern, everything.owners) == ("*", (TEAM,))
        assert [(rule.pattern, rule.owners) for rule in teams] == [
            (f"/apps/{rule.pattern.split('/')[2]}/", (codeowners.team_of(rule.pattern.split("/")[2]), TEAM))
            for rule in teams]
        assert self.TEXT.startswith("# The whole repository needs a review from the platform team")

    @pytest.mark.parametrize("path", DEPLOYED)
    def test_what_runs_with_deploy_credentials_is_owned(self, path: str) -> None:
        assert owners_of(self.TEXT, path) == [TEAM]

    def test_every_tracked_file_is_owned(self) -> None:
        files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.split()
        assert files
        assert [path for path in files if TEAM not in owners_of(self.TEXT, path)] == []

    @pytest.mark.parametrize(("path", "owners"), [
        ("stacks/Pulumi.prod.yaml", [TEAM]), (".github/CODEOWNERS", [TEAM]), (".github/workflows/deploy.yml", [TEAM]),
        ("components/rules.py", []), ("__main__.py", []), ("platformctl/engine.py", []), ("bin/test", []),
        ("constraints.txt", []), (".ci/run", []),
    ])
    def test_the_old_file_left_deployed_code_unowned(self, path: str, owners: list[str]) -> None:
        assert owners_of(OLD_CODEOWNERS, path) == owners
