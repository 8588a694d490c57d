"""CI's login for real, on any applied stack: the deploy role admits a job token only with every claim
exact; a deploy's ``up --refresh`` and a pull request's ``preview --refresh`` (both ``--run-program``) run
as the workflows run them (``platformctl vault-login``, the token file, ``--revoke``) with no "permission
denied" in Vault's audit log; every call the IaC token makes is in ``policies/acl/vault-iac-calls.yaml``;
the preview role writes nothing. The test modules call :func:`check_claims`, :func:`check_deploy` and
:func:`check_preview`."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hvac.exceptions import VaultError  # type: ignore[import-untyped]

from environment import CiRole, GithubActions
from environment.identity import DEPLOY_POLICY, PREVIEW_POLICY
from environment.vault_access import CI_ROLE_VARIABLE, TOKEN_FILE_VARIABLE
from render.identity import bound_claims
from tests.e2e.issuer import OidcIssuer
from tests.e2e.project import PulumiProject
from tests.e2e.servers import VaultServer
from vaultmodel import iac_calls
from vaultmodel.vault_acl import Acl, PathRule


@dataclass
class CiTarget:
    """An applied stack, and what its CI jobs log in with."""

    project: PulumiProject
    stack: str
    vault: VaultServer
    issuer: OidcIssuer
    """GitHub's stand-in: the stack's ``githubActions.issuer`` points at it."""
    github: GithubActions
    audit_entries: Callable[[], list[dict[str, Any]]]
    """Vault's file audit log, parsed."""


def job_claims(target: CiTarget, role: CiRole) -> dict[str, str]:
    """The claims of a GitHub job token the role admits (GitHub's token carries these and more)."""
    return {**bound_claims(target.github, role), "aud": target.github.audience,
            "sub": f"repo:{target.github.repository}:environment:{role.environment}"}


def iac_requests(entries: list[dict[str, Any]], policy: str) -> list[tuple[str, str]]:
    """(operation, path) of every request made with a token holding ``policy``."""
    return [(entry["request"]["operation"], entry["request"]["path"]) for entry in entries
            if entry.get("type") == "request" and policy in (entry.get("auth") or {}).get("policies", [])]


def denials(entries: list[dict[str, Any]]) -> list[str]:
    return [f"{entry['request']['operation']} {entry['request']['path']}: {entry['error']}" for entry in entries
            if entry.get("type") == "response" and "permission denied" in (entry.get("error") or "")]


def as_job(target: CiTarget, role: CiRole, *arguments: str) -> tuple[str, list[dict[str, Any]]]:
    """``pulumi <arguments>`` as the workflows run it (``pulumi-up.yml``, ``pr-preview.yml``): no stored
    token; the job's OIDC token exchanged by ``platformctl vault-login`` for a Vault token in a file the
    provider reads, and revoked as the last step. Returns the run's output and its audit entries."""
    project, stack = target.project, target.stack
    before = len(target.audit_entries())
    token_file = project.root.parent / "vault-token"  # one path for every job, as $RUNNER_TEMP/vault-token
    job = {"TERRAFORM_VAULT_AUTH_JWT": target.issuer.token(job_claims(target, role)), CI_ROLE_VARIABLE: role.name}
    project.run("config", "rm", "--stack", stack, "vault:token")
    try:
        token_file.write_text(project.platformctl("vault-login", stack, environment=job))
        token_file.chmod(0o600)
        job[TOKEN_FILE_VARIABLE] = str(token_file)
        result = project.run(*arguments, "--stack", stack, "--non-interactive", environment=job)
        project.platformctl("vault-login", stack, "--revoke", environment=job)
    finally:
        project.run("config", "set", "--stack", stack, "--secret", "vault:token", target.vault.root_token)
    return result.stdout, target.audit_entries()[before:]


def check_claims(target: CiTarget) -> None:
    """The deploy role admits a job token only with every claim exact, and not once it expired."""
    deploy = target.github.deploy
    anonymous = target.vault.client(token="")

    def login(claims: dict[str, Any], lifetime: int = 300) -> dict[str, Any]:
        answer: dict[str, Any] = anonymous.auth.jwt.jwt_login(
            role=deploy.name, jwt=target.issuer.token(claims, lifetime), path=target.github.path)
        return answer

    right = job_claims(target, deploy)
    assert login(right)["auth"]["policies"] == ["default", *deploy.policies]
    for key, value in right.items():
        if key != "sub":
            with pytest.raises(VaultError):
                login({**right, key: f"{value}-other"})
    with pytest.raises(VaultError):
        login(right, lifetime=-120)  # expired, beyond Vault's 60 s leeway on exp


COMPUTED = re.compile(re.escape(iac_calls.COMPUTED) + "[a-z-]+")
"""A value Vault computes, in a catalogue path as :mod:`vaultmodel.iac_calls` expands it."""


def check_deploy(target: CiTarget) -> None:
    """A deploy's ``up --refresh --run-program``, as the workflow runs it: no denial, and every IaC call in
    the catalogue."""
    _, entries = as_job(target, target.github.deploy, "up", "--yes", "--skip-preview", "--refresh", "--run-program")
    calls = iac_requests(entries, DEPLOY_POLICY)
    assert calls  # the run went through the deploy role's token
    assert denials(entries) == []
    plan = target.project.offline_plan(target.stack)
    needed = iac_calls.calls([(name, resource["type"], resource["inputs"])
                              for name, resource in plan["resources"].items()])
    # An id Vault computes (``identity/group/id/{=id}``) is any one path segment.
    catalogue = Acl({"catalogue": [PathRule(COMPUTED.sub("+", call.path), call.capabilities) for call in needed]})
    outside = sorted({(operation, path) for operation, path in calls if not catalogue.allows(operation, path)})
    assert outside == [], outside


def check_preview(target: CiTarget) -> None:
    """A pull request's ``preview --refresh --run-program`` reads everything with the preview role, and it
    writes nothing."""
    preview = target.github.preview
    _, entries = as_job(target, preview, "preview", "--refresh", "--run-program", "--expect-no-changes")
    assert iac_requests(entries, PREVIEW_POLICY)
    assert denials(entries) == []
    token = target.vault.client(token="").auth.jwt.jwt_login(
        role=preview.name, jwt=target.issuer.token(job_claims(target, preview)),
        path=target.github.path)["auth"]["client_token"]
    with pytest.raises(VaultError):
        target.vault.client(token).sys.enable_secrets_engine("kv", path="e2e-preview-write")
