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

from platformctl.core import codeowners

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


PIN = re.compile(r"uses: ([\w.-]+/[\w.-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$", re.M)
"""An action pinned by its full commit SHA (a tag can be moved to other code), the release tag in a
comment. Each SHA was read from the action's own repository (``git rev-parse <tag>^{commit}``)."""


def unpinned(line: str) -> bool:
    """A ``uses:`` line that names neither a local workflow nor a commit with its release."""
    return not (re.search(r"uses: \./", line) or PIN.search(line))


def action(step: dict[str, Any]) -> str:
    """``owner/name`` of a step's action, without the pinned commit."""
    return str(step["uses"]).split("@")[0]


def provider_plugins(run: str) -> dict[str, str]:
    """``name -> version`` of each ``pulumi plugin install resource`` in a ``run:`` script."""
    return dict(re.findall(r"^pulumi plugin install resource (\S+) (\S+)$", run, re.M))


def sdk_providers(requirements: str) -> dict[str, str]:
    """``name -> version`` of each provider SDK pinned in requirements.txt (``pulumi-<name>==<version>``)."""
    return dict(re.findall(r"^pulumi-([a-z]+)==(\S+)$", requirements, re.M))


def stand_in(directory: Path, body: str) -> None:
    """A ``python`` in ``directory`` that runs the shell ``body`` (``$3`` is the platformctl command)."""
    (directory / "python").write_text(f"#!/bin/sh\n{body}\n")
    (directory / "python").chmod(0o755)


def run_step(script: str, directory: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A ``run:`` script as GitHub runs it (``bash -e``), with the stand-in ``python`` first on the path."""
    return subprocess.run(["bash", "-e", "-c", script], env={"PATH": f"{directory}:/usr/bin:/bin", **env},
                          capture_output=True, text=True, check=False)


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
    def test_actions_are_pinned_to_a_commit_with_the_release_in_a_comment(self, path: Path) -> None:
        lines = [line.strip() for line in path.read_text().splitlines() if re.search(r"\buses:", line)]
        assert lines
        assert [line for line in lines if unpinned(line)] == []

    def test_one_commit_per_action_and_release_in_every_workflow(self) -> None:
        pins: dict[str, set[str]] = {}
        for path in FILES:
            for action, sha, release in PIN.findall(path.read_text()):
                pins.setdefault(f"{action} {release}", set()).add(sha)
        assert len(pins) == 8
        assert {release: shas for release, shas in pins.items() if len(shas) > 1} == {}

    @pytest.mark.parametrize("line", [
        "- uses: actions/checkout@v4.2.2",  # a tag can be moved to other code
        "- uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683",  # which release is it?
        "- uses: actions/checkout@11bd719 # v4.2.2",  # an abbreviated commit is ambiguous
        "- uses: actions/checkout@main # v4.2.2",
    ])
    def test_a_tag_or_a_bare_commit_is_refused(self, line: str) -> None:
        assert unpinned(line)


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
        assert action(steps(job)[-1]) == "actions/upload-artifact"

    def test_comment_is_posted_from_the_base_without_running_pr_code(self) -> None:
        document = load("pr-plan-diff-comment.yml")
        assert triggers(document) == {"workflow_run": {"workflows": ["Pull request plan diff"],
                                                       "types": ["completed"]}}
        job = document["jobs"]["comment"]
        assert job["permissions"] == {"actions": "read", "pull-requests": "write"}
        assert [action(step) for step in steps(job)] == ["actions/download-artifact", "actions/github-script"]
        script = steps(job)[1]["with"]["script"]
        assert "updateComment" in script
        assert "const marker = '<!-- vault-platform:plan-diff -->';" in script

    def test_preview_has_credentials_only_for_branches_of_this_repository(self) -> None:
        job = load("pr-preview.yml")["jobs"]["preview"]
        assert job["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
        assert job["permissions"]["id-token"] == "write"
        uses = [step.get("uses", step.get("name", "")).split("@")[0] for step in steps(job)]
        assert uses.index("Preflight the KMS auto-unseal key") < uses.index("pulumi/actions")
        preview = steps(job)[uses.index("pulumi/actions")]["with"]
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
        labels = [step.get("name") or action(step) for step in steps(definition)]
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


LOGIN_JOBS = [("pulumi-up.yml", "up"), ("pr-preview.yml", "preview")]


class TestVaultLoginSteps:
    """Each job that reaches Vault logs in once, before its first Pulumi step (the provider logs in at
    its first Vault call, which in an ``up`` comes after the Helm release: the OIDC token would be
    expired by then), and revokes that token as its last step, whatever happened before."""

    @pytest.mark.parametrize(("name", "job"), LOGIN_JOBS)
    def test_the_token_file_is_written_before_the_first_pulumi_step(self, name: str, job: str) -> None:
        definition = steps(load(name)["jobs"][job])
        labels = [step.get("name") or action(step) for step in definition]
        login = labels.index("Vault token for this job")
        assert labels[login - 1] == "OIDC token for Vault"
        assert labels.count("OIDC token for Vault") == 1
        first_pulumi = next(i for i, step in enumerate(definition) if step.get("uses", "").startswith("pulumi/"))
        assert login < first_pulumi

    @pytest.mark.parametrize(("name", "job"), LOGIN_JOBS)
    def test_the_login_writes_the_token_for_the_job_alone_and_names_the_file(
            self, name: str, job: str, tmp_path: Path) -> None:
        (login,) = [step for step in steps(load(name)["jobs"][job]) if step.get("name") == "Vault token for this job"]
        stand_in(tmp_path, 'case "$3" in vault-login) echo s.job-token ;; *) exit 9 ;; esac')
        (tmp_path / "env").write_text("")
        result = run_step(login["run"], tmp_path, STACK="dev", RUNNER_TEMP=str(tmp_path),
                          GITHUB_ENV=str(tmp_path / "env"))
        assert (result.returncode, result.stdout) == (0, "")  # the token is never printed
        token = tmp_path / "vault-token"
        assert (token.read_text(), token.stat().st_mode & 0o777) == ("s.job-token\n", 0o600)
        assert (tmp_path / "env").read_text() == f"TERRAFORM_VAULT_TOKEN_FILENAME={token}\n"

    @pytest.mark.parametrize(("name", "job"), LOGIN_JOBS)
    def test_a_refused_login_fails_the_step(self, name: str, job: str, tmp_path: Path) -> None:
        (login,) = [step for step in steps(load(name)["jobs"][job]) if step.get("name") == "Vault token for this job"]
        stand_in(tmp_path, "exit 1")
        (tmp_path / "env").write_text("")
        result = run_step(login["run"], tmp_path, STACK="dev", RUNNER_TEMP=str(tmp_path),
                          GITHUB_ENV=str(tmp_path / "env"))
        assert result.returncode == 1
        assert (tmp_path / "env").read_text() == ""

    @pytest.mark.parametrize(("name", "job"), LOGIN_JOBS)
    @pytest.mark.parametrize(("status", "warned"), [(0, False), (1, True)])
    def test_the_last_step_revokes_the_token_always_and_never_fails_the_job(
            self, name: str, job: str, status: int, warned: bool, tmp_path: Path) -> None:
        revoke = steps(load(name)["jobs"][job])[-1]
        assert (revoke["name"], revoke["if"]) == ("Revoke the job's Vault token", "always()")
        stand_in(tmp_path, f'[ "$3 $5" = "vault-login --revoke" ] && echo "$4" > "{tmp_path}/revoked"; exit {status}')
        result = run_step(revoke["run"], tmp_path, STACK="staging")
        assert (tmp_path / "revoked").read_text() == "staging\n"
        assert result.returncode == 0
        assert ("::warning title=Vault token not revoked::staging" in result.stdout) is warned


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
        assert steps(job)[-1]["run"] == 'sudo -E env "PATH=$PATH" bin/test'  # root, as .ci/run
        text = (WORKFLOWS / "test.yml").read_text()
        assert "secrets." not in text
        assert "id-token" not in text

    def test_the_test_workflow_installs_the_real_tools_and_a_cluster_before_bin_test(self) -> None:
        job = load("test.yml")["jobs"]["test"]
        labels = [step.get("name") or action(step) for step in steps(job)]
        assert labels == ["actions/checkout", "actions/setup-python", "pulumi/actions", "Provider plugins", "Vault",
                          "helm/kind-action", "Lint, type-check and test"]
        assert job["env"] == {"VAULT_PLATFORM_E2E": "require"}  # a missing tool fails the run
        assert steps(job)[2]["with"] == {"pulumi-version": "3.274.0"}  # no command: install only
        vault = steps(job)[4]["run"]
        assert vault.index("sha256sum --check") < vault.index("unzip")
        assert steps(job)[-1]["env"]["VAULT_PLATFORM_E2E_KUBECONFIG"] == steps(job)[5]["with"]["kubeconfig"]

    def test_the_test_workflow_installs_the_providers_the_sdk_pins(self) -> None:
        run = steps(load("test.yml")["jobs"]["test"])[3]["run"]
        assert provider_plugins(run) == sdk_providers((ROOT / "requirements.txt").read_text())
        assert provider_plugins(run) == {"vault": "7.14.0", "random": "4.21.4", "kubernetes": "4.34.2"}
        assert provider_plugins(run) != sdk_providers("pulumi-vault==7.14.0\npulumi-random==4.21.4\n"
                                                      "pulumi-kubernetes==4.35.0\n")

    def test_each_stack_in_its_environment_one_run_at_a_time(self) -> None:
        job = load("pulumi-up.yml")["jobs"]["up"]
        assert job["environment"] == "${{ inputs.stack }}"
        assert job["concurrency"] == {"group": "pulumi-up-${{ inputs.stack }}", "cancel-in-progress": False}

    def test_oidc_kubeconfig_preflight_before_preview_and_before_up(self) -> None:
        text = (WORKFLOWS / "pulumi-up.yml").read_text()
        assert "secrets." not in text
        labels = [step.get("with", {}).get("command") or step.get("name") or action(step)
                  for step in steps(load("pulumi-up.yml")["jobs"]["up"])]
        assert labels[3:] == [
            "aws-actions/configure-aws-credentials",
            "Write the kubeconfig for the stack's EKS cluster",
            "Preflight the KMS auto-unseal key (before preview)", "Audience of the stack's Vault login",
            "OIDC token for Vault", "Vault token for this job", "Install the Pulumi CLI",
            READY_THE_STACKS, "preview",
            "Preflight the KMS auto-unseal key (before up)", "up", "Up each team's stack with the guardrails",
            "Record the commit the environment's stacks are deployed at",
            "Roll the Vault servers onto the new template", "Revoke the job's Vault token"]

    def test_rollout_after_up_with_the_jobs_own_login_masked(self) -> None:
        rollout = steps(load("pulumi-up.yml")["jobs"]["up"])[-2]
        assert "env" not in rollout
        lines = rollout["run"].splitlines()
        assert lines[:3] == ['VAULT_TOKEN="$(cat "$TERRAFORM_VAULT_TOKEN_FILENAME")"',
                             'echo "::add-mask::$VAULT_TOKEN"', "export VAULT_TOKEN"]
        assert 'python -m platformctl rollout "$STACK" || status=$?' in lines
        assert "--dry-run" not in rollout["run"]

    @pytest.mark.parametrize(("status", "outcome"), [(0, 0), (1, 1), (2, 2), (3, 0)])
    def test_rollout_exit_codes(self, status: int, outcome: int, tmp_path: Path) -> None:
        # The step's own script, run by bash with a stand-in for python: the login prints a token, the
        # rollout exits with ``status``.
        script = steps(load("pulumi-up.yml")["jobs"]["up"])[-2]["run"]
        stand_in(tmp_path, f"exit {status}")
        (tmp_path / "vault-token").write_text("s.token\n")
        result = run_step(script, tmp_path, STACK="dev", TERRAFORM_VAULT_TOKEN_FILENAME=str(tmp_path / "vault-token"))
        assert result.returncode == outcome
        assert result.stdout.startswith("::add-mask::s.token\n")
        assert ("::warning title=Vault servers not rolled out::dev unseals by hand" in result.stdout) is (status == 3)


def named_step(name: str, job: str, label: str) -> dict[str, Any]:
    (step,) = [step for step in steps(load(name)["jobs"][job]) if step.get("name") == label]
    return step


def stand_in_pulumi(directory: Path, failing: str = "") -> None:
    """A ``pulumi`` in ``directory`` that logs each call and fails for the stack ``failing``."""
    (directory / "pulumi").write_text(
        f'#!/bin/sh\necho "pulumi $*" >> "{directory}/calls"\n'
        'case "$*" in "stack ls --json") echo \'[{"name": "dev"}, {"name": "dev.orders"}]\' ;; esac\n'
        f'case "$*" in *"--stack {failing} "*) [ -n "{failing}" ] && exit 1 ;; esac\nexit 0\n')
    (directory / "pulumi").chmod(0o755)


READY_THE_STACKS = ("Choose the team stacks, ready those a lost run left midway, and move the applications' state "
                    "to them")


class TestTeamStacks:
    """The stacks of an environment's teams (``vault-platform:teamStacks``): readied, previewed and applied
    after the environment's own, each team's even when another's fails, with the measured ``--parallel``."""

    MOVE = ["python -m platformctl move-to-team-stacks dev --secrets-provider awskms://alias/k"]

    @pytest.mark.parametrize(("recorded", "stack_file_changed", "chosen", "moved"), [
        ("abc", False, "python -m platformctl team-stacks dev --backend --changed-since abc", []),
        ("abc", True, "python -m platformctl team-stacks dev --backend --changed-since abc", MOVE),
        ("", False, "python -m platformctl team-stacks dev --backend", MOVE),  # no complete deploy yet
        ("gone", False, "python -m platformctl team-stacks dev --backend", MOVE),  # a commit left the history
    ])
    def test_the_teams_changed_since_the_last_complete_deploy_are_created_readied_and_given_their_state(
            self, recorded: str, stack_file_changed: bool, chosen: str, moved: list[str], tmp_path: Path) -> None:
        step = named_step("pulumi-up.yml", "up", READY_THE_STACKS)
        stand_in(tmp_path, f'echo "python $*" >> "{tmp_path}/calls"; '
                           'case "$3" in team-stacks) printf "dev.orders\\ndev.payments\\n" ;; esac')
        stand_in_pulumi(tmp_path)
        (tmp_path / "aws").write_text(f'#!/bin/sh\necho "aws $*" >> "{tmp_path}/calls"\n'
                                      + (f'echo {recorded}\n' if recorded else 'exit 1\n'))
        (tmp_path / "aws").chmod(0o755)
        # git knows the commit "abc" alone; its diff of the stack file exits 1 when the file changed.
        (tmp_path / "git").write_text(f'#!/bin/sh\necho "git $*" >> "{tmp_path}/calls"\ncase "$1" in\n'
                                      '  cat-file) [ "$3" = "abc^{commit}" ] ;;\n'
                                      f'  diff) exit {int(stack_file_changed)} ;;\nesac\n')
        (tmp_path / "git").chmod(0o755)
        (tmp_path / "out").write_text("")
        result = run_step(step["run"], tmp_path, STACK="dev", SECRETS_PROVIDER="awskms://alias/k",
                          GITHUB_OUTPUT=str(tmp_path / "out"), DEPLOYED_COMMIT="s3://state-dev/deployed")
        assert result.returncode == 0, result.stderr
        known = recorded == "abc"
        assert (tmp_path / "calls").read_text().splitlines() == [
            "aws s3 cp s3://state-dev/deployed -",
            *([f"git cat-file -e {recorded}^{{commit}}"] if recorded else []), chosen,
            *(["git diff --quiet abc -- stacks/Pulumi.dev.yaml"] if known else []),
            "pulumi stack select --create dev.orders --secrets-provider awskms://alias/k",
            "pulumi stack select --create dev.payments --secrets-provider awskms://alias/k",
            "python -m platformctl resume dev", "python -m platformctl resume dev.orders",
            "python -m platformctl resume dev.payments", *moved]
        assert (tmp_path / "out").read_text() == "teams=dev.orders dev.payments\n"
        assert ("::notice title=Every team stack::dev" in result.stdout) is not known

    def test_an_environment_that_keeps_its_applications_moves_nothing(self, tmp_path: Path) -> None:
        step = named_step("pulumi-up.yml", "up", READY_THE_STACKS)
        stand_in(tmp_path, f'echo "python $*" >> "{tmp_path}/calls"')  # team-stacks: none
        stand_in_pulumi(tmp_path)
        (tmp_path / "aws").write_text(f'#!/bin/sh\necho "aws $*" >> "{tmp_path}/calls"\n')  # nothing recorded
        (tmp_path / "aws").chmod(0o755)
        result = run_step(step["run"], tmp_path, STACK="dev", SECRETS_PROVIDER="awskms://alias/k",
                          GITHUB_OUTPUT=str(tmp_path / "out"), DEPLOYED_COMMIT="s3://state-dev/deployed")
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "calls").read_text().splitlines() == [
            "aws s3 cp s3://state-dev/deployed -", "python -m platformctl team-stacks dev --backend",
            "python -m platformctl resume dev"]

    def test_a_deploy_records_its_commit_once_every_team_stack_it_chose_is_applied(self, tmp_path: Path) -> None:
        job = steps(load("pulumi-up.yml")["jobs"]["up"])
        labels = [step.get("name") for step in job]
        record = labels.index("Record the commit the environment's stacks are deployed at")
        assert labels[record - 1] == "Up each team's stack with the guardrails"  # which exits 1 on a failure
        assert "if" not in job[record]
        (tmp_path / "aws").write_text(f'#!/bin/sh\necho "aws $*" >> "{tmp_path}/calls"\ncat >> "{tmp_path}/calls"\n')
        (tmp_path / "aws").chmod(0o755)
        result = run_step(job[record]["run"], tmp_path, GITHUB_SHA="abc", DEPLOYED_COMMIT="s3://state-dev/deployed")
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "calls").read_text().splitlines() == ["aws s3 cp - s3://state-dev/deployed", "abc"]
        assert load("pulumi-up.yml")["jobs"]["up"]["env"]["DEPLOYED_COMMIT"] == (
            "s3://${{ vars.PULUMI_STATE_BUCKET_PREFIX }}-${{ inputs.stack }}/vault-platform/deployed-commit")
        assert steps(load("pulumi-up.yml")["jobs"]["up"])[0]["with"]["fetch-depth"] == 0

    @pytest.mark.parametrize("failing", ["", "dev.orders"])
    def test_each_teams_stack_is_applied_even_after_another_fails(self, failing: str, tmp_path: Path) -> None:
        step = named_step("pulumi-up.yml", "up", "Up each team's stack with the guardrails")
        assert step["env"] == {"TEAMS": "${{ steps.stacks.outputs.teams }}"}
        stand_in_pulumi(tmp_path, failing)
        result = run_step(step["run"], tmp_path, STACK="dev", TEAMS="dev.orders dev.payments", PARALLEL="32",
                          GITHUB_SHA="abc")
        assert (tmp_path / "calls").read_text().splitlines() == [
            f"pulumi up --stack {stack} --yes --non-interactive --policy-pack policies/guardrails --parallel 32 "
            "--refresh --message abc" for stack in ("dev.orders", "dev.payments")]
        assert result.returncode == (1 if failing else 0)
        assert ("::error title=Team stacks failed::dev: dev.orders" in result.stdout) is bool(failing)

    def test_a_pull_request_previews_the_existing_team_stacks_its_files_can_change(self, tmp_path: Path) -> None:
        step = named_step("pr-preview.yml", "preview", "Preview the team stacks the change can change")
        stand_in(tmp_path, f'echo "python $*" >> "{tmp_path}/calls"; case "$3" in team-stacks) '
                           'printf "dev.new\\ndev.orders\\n" ;; *) exec /usr/bin/env python3 "$@" ;; esac')
        stand_in_pulumi(tmp_path)
        result = run_step(step["run"], tmp_path, STACK="dev", PARALLEL="32")
        assert result.returncode == 0, result.stderr
        calls = (tmp_path / "calls").read_text().splitlines()
        # The merge commit's first parent is the pull request's base.
        assert calls[0] == "python -m platformctl team-stacks dev --backend --changed-since HEAD^1"
        assert calls[-1] == ("pulumi preview --stack dev.orders --non-interactive --diff --policy-pack "
                             "policies/guardrails --parallel 32 --refresh")
        assert "::notice title=New team stack::dev.new is created by the deploy" in result.stdout

    @pytest.mark.parametrize(("name", "job"), LOGIN_JOBS)
    def test_every_pulumi_step_runs_with_the_measured_parallelism(self, name: str, job: str) -> None:
        definition = load(name)["jobs"][job]
        assert definition["env"]["PARALLEL"] == "32"
        for step in steps(definition):
            if step.get("with", {}).get("command"):
                assert step["with"]["parallel"] == "${{ env.PARALLEL }}"
            if "pulumi up" in step.get("run", "") or "pulumi preview" in step.get("run", ""):
                assert '--parallel "$PARALLEL"' in step["run"]

    @pytest.mark.parametrize(("name", "job"), LOGIN_JOBS)
    def test_every_pulumi_preview_and_up_compares_with_what_vault_holds(self, name: str, job: str) -> None:
        """A failed update leaves the values it meant to write in the state; only a refresh shows the next
        run that Vault does not hold them (``tests/e2e/test_team_stacks.py``)."""
        # With the job's own login: the refresh runs the program for its providers.
        assert load(name)["jobs"][job]["env"]["PULUMI_RUN_PROGRAM"] == "true"
        runs = [step for step in steps(load(name)["jobs"][job])
                if step.get("with", {}).get("command") in ("preview", "up")
                or any(f"pulumi {command} --stack" in step.get("run", "") for command in ("preview", "up"))]
        assert runs
        for step in runs:
            assert step["with"]["refresh"] is True if "with" in step else "--refresh" in step["run"], step


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
    # What runs with deploy credentials, or decides what does (the pack imports environment/, render/ and vaultmodel/).
    DEPLOYED = ["__main__.py", "Pulumi.yaml", "vaultmodel/rules.py", "render/acl.py",
                "platformctl/adapters/engine.py", "bin/test", "requirements.txt", "requirements-dev.txt",
                "constraints.txt", ".ci/run", "stacks/Pulumi.prod.yaml", "policies/guardrails/checks.py",
                "policies/acl/vault-iac.hcl", ".github/workflows/pulumi-up.yml", ".github/CODEOWNERS"]

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
        ("vaultmodel/rules.py", []), ("__main__.py", []), ("platformctl/adapters/engine.py", []), ("bin/test", []),
        ("constraints.txt", []), (".ci/run", []),
    ])
    def test_the_old_file_left_deployed_code_unowned(self, path: str, owners: list[str]) -> None:
        assert owners_of(OLD_CODEOWNERS, path) == owners
