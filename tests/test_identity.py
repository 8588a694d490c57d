"""Who logs in besides the applications: GitHub Actions jobs (JWT auth with the job's OIDC token, the
provider's auth_login_jwt) and people (OIDC auth, groups mapped to identity groups). Properties that
hold for every committed stack, exact shapes on edited copies, every refusal, and the policies the
two CI roles and the operators get, evaluated with Vault's ACL semantics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hvac import exceptions as hvac_exceptions  # type: ignore[import-untyped]

from environment import EnvironmentSpec, load_policy_files
from environment.identity import GITHUB_ISSUER
from platformctl.__main__ import main as platformctl_main
from platformctl.commands.vault_login_command import JwtLoginRequest, login_request
from platformctl.core.declaration import Declaration, DeclaredResource, is_secret
from tests.postgres.server import ServerTls
from tests.support import (
    ANY_STACK,
    COMMITTED,
    DELETE,
    STACKS,
    any_stack,
    declare_config,
    declare_stack,
    refusal,
    spec_of,
    spec_of_config,
)
from vaultmodel import rules
from vaultmodel.iac_calls import Call, calls
from vaultmodel.vault_acl import Acl

ROOT = Path(__file__).resolve().parents[1]
P = "vault-platform:"
JWT_BACKEND = "vault:jwt/authBackend:AuthBackend"
JWT_ROLE = "vault:jwt/authBackendRole:AuthBackendRole"
GROUP = "vault:identity/group:Group"
ALIAS = "vault:identity/groupAlias:GroupAlias"
PROVIDER = "pulumi:providers:vault"
WRITES = ("create", "update", "patch", "delete")


def spec(stack: str) -> EnvironmentSpec:
    """The spec of a member of ``ANY_STACK`` (a committed stack, or one with an app onboarded)."""
    return spec_of_config(any_stack(stack))


def by_name(declaration: Declaration, type_token: str) -> dict[str, DeclaredResource]:
    return {resource.name: resource for resource in declaration.of_type(type_token)}


def type_of(call: Call) -> str:
    """The resource type of a catalogue call (``<name> (<type>) <phase>``)."""
    return call.needed_by.split(" (", 1)[1].rsplit(") ", 1)[0]


def policy_text(name: str) -> str:
    (document,) = [d for d in load_policy_files() if d.name == name]
    return document.hcl


@pytest.mark.parametrize("stack", ANY_STACK)
class TestEveryStack:
    """Holds for any valid stack: the committed ones are edited every week."""

    def test_ci_logs_in_with_its_oidc_token(self, any_declared: dict[str, Declaration], stack: str) -> None:
        github = spec(stack).github_actions
        assert github is not None
        (provider,) = any_declared[stack].of_type(PROVIDER)
        assert json.loads(provider.inputs["authLoginJwt"]) == {"role": "deploy", "mount": github.path}
        assert provider.inputs["skipChildToken"] == "true"
        assert "token" not in provider.inputs

    def test_the_jwt_method_trusts_githubs_issuer_only(self, any_declared: dict[str, Declaration], stack: str) -> None:
        github = spec(stack).github_actions
        assert github is not None
        (backend,) = [b for b in any_declared[stack].of_type(JWT_BACKEND) if b.inputs["type"] == "jwt"]
        assert (backend.inputs["path"], backend.inputs["oidcDiscoveryUrl"], backend.inputs["boundIssuer"]) == (
            github.path, github.issuer, github.issuer)
        assert backend.inputs.get("oidcDiscoveryCaPem") == github.issuer_ca_pem
        assert backend.protect is spec(stack).keeps(f"sys/auth/{github.path}")  # in every tier

    def test_each_ci_role_binds_exact_claims_and_dies_with_the_job(self, any_declared: dict[str, Declaration],
                                                                    stack: str) -> None:
        github = spec(stack).github_actions
        assert github is not None
        roles = {r.inputs["roleName"]: r.inputs for r in any_declared[stack].of_type(JWT_ROLE)
                 if r.inputs["roleType"] == "jwt"}
        assert sorted(roles) == ["deploy", "preview"]
        for role in github.roles:
            inputs = roles[role.name]
            expected = {"repository": github.repository, "repository_id": github.repository_id,
                        "repository_owner_id": github.repository_owner_id, "environment": role.environment}
            if role.name == "deploy":
                expected["ref"] = "refs/heads/main"
            assert inputs["boundClaims"] == expected
            assert (inputs["boundClaimsType"], inputs["boundAudiences"], inputs["backend"]) == (
                "string", [github.audience], github.path)
            assert rules.jwt_role_binding(inputs["boundClaims"], inputs["boundClaimsType"],
                                          inputs["boundAudiences"]) is None
            assert inputs["tokenTtl"] == inputs["tokenMaxTtl"] == inputs["tokenExplicitMaxTtl"] == role.token_ttl
        assert roles["deploy"]["tokenPolicies"] == ["vault-iac"]
        assert roles["preview"]["tokenPolicies"][0] == "vault-preview"
        assert roles["preview"]["boundClaims"]["environment"] != roles["deploy"]["boundClaims"]["environment"]

    def test_people_log_in_through_their_groups_only(self, any_declared: dict[str, Declaration], stack: str) -> None:
        people = spec(stack).people
        assert people is not None
        (backend,) = [b for b in any_declared[stack].of_type(JWT_BACKEND) if b.inputs["type"] == "oidc"]
        assert (backend.inputs["path"], backend.inputs["oidcDiscoveryUrl"], backend.inputs["oidcClientId"],
                backend.inputs["defaultRole"]) == (people.path, people.discovery_url, people.client_id, "people")
        assert is_secret(backend.inputs["oidcClientSecret"])
        (role,) = [r.inputs for r in any_declared[stack].of_type(JWT_ROLE) if r.inputs["roleType"] == "oidc"]
        assert role["allowedRedirectUris"] == list(people.allowed_redirect_uris)
        assert (role["groupsClaim"], role["userClaim"], role["tokenPolicies"]) == (
            people.groups_claim, people.user_claim, [])
        groups = by_name(any_declared[stack], GROUP)
        aliases = {a.inputs["name"]: a.inputs for a in any_declared[stack].of_type(ALIAS)}
        assert sorted(g.inputs["name"] for g in groups.values()) == sorted(aliases) == [g.name for g in people.groups]
        for group in groups.values():
            assert group.inputs["type"] == "external"
            assert aliases[group.inputs["name"]]["canonicalId"] == f"{group.name}-id"

    def test_nothing_but_one_group_grants_platform_admin(self, any_declared: dict[str, Declaration],
                                                         stack: str) -> None:
        granting = [r.name for r in any_declared[stack].resources
                    if "platform-admin" in (r.inputs.get("tokenPolicies") or r.inputs.get("policies") or [])]
        assert len(granting) == 1
        assert any_declared[stack].named(granting[0]).type == GROUP



class TestWorkflowsAndRoles:
    @pytest.mark.parametrize(("workflow", "role"), [("pulumi-up.yml", "deploy"), ("pr-preview.yml", "preview")])
    def test_a_roles_token_lives_exactly_as_long_as_its_job(self, workflow: str, role: str) -> None:
        document = yaml.safe_load((ROOT / ".github" / "workflows" / workflow).read_text())
        (job,) = document["jobs"].values()
        assert job["env"]["VAULT_PLATFORM_CI_ROLE"] == role
        for stack in COMMITTED:
            github = spec(stack).github_actions
            assert github is not None
            ttls: dict[str, int] = {r.name: r.token_ttl for r in github.roles}
            assert ttls[role] == job["timeout-minutes"] * 60


class TestLogin:
    def test_the_bootstrap_run_uses_the_stacks_token_through_a_child_token(
            self, declared: dict[str, Declaration]) -> None:
        # The test stacks set vault:token besides githubActions: the token wins, as in a bootstrap run.
        (provider,) = declared["prod"].of_type(PROVIDER)
        assert is_secret(provider.inputs["token"])
        assert (provider.inputs["skipChildToken"], provider.inputs["maxLeaseTtlSeconds"]) == ("false", "3600")
        assert "authLoginJwt" not in provider.inputs

    def test_a_preview_job_logs_in_with_the_preview_role(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("VAULT_PLATFORM_CI_ROLE", "preview")
        (provider,) = declare_config(any_stack("staging")).of_type(PROVIDER)
        assert json.loads(provider.inputs["authLoginJwt"]) == {"role": "preview", "mount": "github-actions"}

    def test_a_job_that_logged_in_first_hands_the_provider_its_token_file(
            self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        # The provider logs in at its first Vault call, after the Helm release: with the job's Vault
        # token (logged in for before the release, it lives an hour), not the OIDC token (minutes).
        (tmp_path / "vault-token").write_text("s.job-token\n")
        monkeypatch.setenv("TERRAFORM_VAULT_TOKEN_FILENAME", str(tmp_path / "vault-token"))
        (provider,) = declare_config(any_stack("staging")).of_type(PROVIDER)
        assert json.loads(provider.inputs["authLoginTokenFile"]) == {"filename": str(tmp_path / "vault-token")}
        assert (provider.inputs["skipChildToken"], "authLoginJwt" in provider.inputs) == ("true", False)
        assert "s.job-token" not in json.dumps(provider.inputs)  # the provider reads the file itself

    def test_a_token_file_that_is_not_there_is_refused(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("TERRAFORM_VAULT_TOKEN_FILENAME", str(tmp_path / "vault-token"))
        declaration = declare_config(any_stack("staging"))
        assert declaration.error is not None
        assert (f"stack 'staging', config key 'TERRAFORM_VAULT_TOKEN_FILENAME': '{tmp_path}/vault-token' is not a "
                "file. Fix: write the job's Vault token there first") in declaration.error

    def test_a_stacks_token_wins_over_the_jobs_token_file(self, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
        monkeypatch.setenv("TERRAFORM_VAULT_TOKEN_FILENAME", str(tmp_path / "absent"))
        (provider,) = declare_stack("prod").of_type(PROVIDER)
        assert is_secret(provider.inputs["token"])
        assert "authLoginTokenFile" not in provider.inputs

    def test_an_unknown_role_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("VAULT_PLATFORM_CI_ROLE", "admin")
        declaration = declare_config(any_stack("staging"))
        assert declaration.error is not None
        assert "stack 'staging', config key 'VAULT_PLATFORM_CI_ROLE': 'admin' is not a role" in declaration.error
        assert declaration.of_type(PROVIDER) == []

    def test_without_an_address_only_the_cluster_is_declared(self) -> None:
        declaration = declare_config(any_stack("prod", configured=False))
        assert declaration.error is None
        assert declaration.of_type(PROVIDER) == []

    def test_cluster_only_overrides_the_ci_login_but_not_a_token(self) -> None:
        # githubActions and vault:address are in the stack file from day one; a token is set on purpose.
        assert spec_of("prod", {"vault:token": DELETE, f"{P}clusterOnly": True}).vault is None
        error = refusal("prod", {f"{P}clusterOnly": True}, f"{P}clusterOnly")
        assert error.problem.startswith("is true, but vault:token is set")


PRIVATE_CA = ServerTls.throwaway("github.acme.example", "acme private CA")
EXACT: dict[str, Any] = {
    f"{P}githubActions": {"repository": "acme/payments-vault", "repositoryId": 612345678,
                          "repositoryOwnerId": 87654321, "audience": "https://vault.acme.example",
                          "issuer": "https://github.acme.example/_services/token", "issuerCaPem": PRIVATE_CA.ca_pem,
                          "deployEnvironment": "production", "previewEnvironment": "production-pr",
                          "previewPolicies": ["operations-readonly"]},
    f"{P}oidc": {"discoveryUrl": "https://acme.okta.com/", "clientId": "0oa1vault", "discoveryCaPem": PRIVATE_CA.ca_pem,
                 "clientSecret": {"fromSecret": "oidcClientSecret"},
                 "allowedRedirectUris": ["https://vault.acme.example/ui/vault/auth/oidc/oidc/callback"],
                 "userClaim": "preferred_username", "scopes": ["groups"], "tokenTtl": "30m", "tokenMaxTtl": "4h",
                 "groups": [{"name": "sre", "policies": ["operations-readonly", "api-secrets"]},
                            {"name": "Platform.Team", "policies": ["platform-admin"]}]},
}


@pytest.fixture(scope="module")
def declaration() -> Declaration:
    """The prod stack with every identity setting written out."""
    declared = declare_stack("prod", EXACT)
    assert declared.error is None
    return declared


class TestExactShapes:
    """An edited stack: every value as written, and the defaults."""

    def test_a_private_issuer_and_its_ca(self, declaration: Declaration) -> None:
        backend = declaration.named("vault-github-actions-backend").inputs
        assert (backend["oidcDiscoveryUrl"], backend["boundIssuer"], backend["oidcDiscoveryCaPem"]) == (
            "https://github.acme.example/_services/token", "https://github.acme.example/_services/token",
            PRIVATE_CA.ca_pem)
        assert declaration.named("vault-people-backend").inputs["oidcDiscoveryCaPem"] == PRIVATE_CA.ca_pem

    def test_githubs_issuer_by_default(self) -> None:
        github = spec_of("prod").github_actions
        assert github is not None
        assert (github.issuer, github.issuer_ca_pem) == (GITHUB_ISSUER, None)

    def test_ci_roles(self, declaration: Declaration) -> None:
        roles = by_name(declaration, JWT_ROLE)
        assert {key: roles["vault-github-actions-deploy"].inputs[key] for key in (
            "roleName", "roleType", "boundClaims", "boundClaimsType", "boundAudiences", "userClaim", "tokenPolicies",
            "tokenTtl", "tokenMaxTtl", "tokenExplicitMaxTtl", "tokenType")} == {
            "roleName": "deploy", "roleType": "jwt",
            "boundClaims": {"repository": "acme/payments-vault", "repository_id": "612345678",
                            "repository_owner_id": "87654321", "environment": "production", "ref": "refs/heads/main"},
            "boundClaimsType": "string", "boundAudiences": ["https://vault.acme.example"], "userClaim": "sub",
            "tokenPolicies": ["vault-iac"], "tokenTtl": 3600, "tokenMaxTtl": 3600, "tokenExplicitMaxTtl": 3600,
            "tokenType": "service"}
        preview = roles["vault-github-actions-preview"].inputs
        assert (preview["boundClaims"], preview["tokenPolicies"], preview["tokenExplicitMaxTtl"]) == (
            {"repository": "acme/payments-vault", "repository_id": "612345678", "repository_owner_id": "87654321",
             "environment": "production-pr"},
            ["vault-preview", "operations-readonly"], 1800)

    def test_people(self, declaration: Declaration) -> None:
        backend = declaration.named("vault-people-backend").inputs
        assert (backend["oidcDiscoveryUrl"], backend["oidcClientId"], backend["type"], backend["path"]) == (
            "https://acme.okta.com/", "0oa1vault", "oidc", "oidc")
        role = declaration.named("vault-people-role").inputs
        assert (role["allowedRedirectUris"], role["userClaim"], role["oidcScopes"], role["boundAudiences"],
                role["tokenTtl"], role["tokenMaxTtl"]) == (
            ["https://vault.acme.example/ui/vault/auth/oidc/oidc/callback"], "preferred_username", ["groups"],
            ["0oa1vault"], 1800, 14400)
        groups = {g.inputs["name"]: g.inputs["policies"] for g in declaration.of_type(GROUP)}
        assert groups == {"Platform.Team": ["platform-admin"], "sre": ["operations-readonly", "api-secrets"]}
        alias = declaration.named("vault-people-alias-sre").inputs
        assert (alias["name"], alias["canonicalId"]) == ("sre", "vault-people-group-sre-id")


GA = f"{P}githubActions"
OIDC = f"{P}oidc"


class TestBadInput:
    @pytest.mark.parametrize(("changes", "key", "problem"), [
        ({f"{GA}.repository": DELETE}, f"{GA}.repository", "is required but not set"),
        ({f"{GA}.repository": "vault-platform/*"}, f"{GA}.repository", "'vault-platform/*' holds a glob ('*')"),
        ({f"{GA}.repository": "vault-platform"}, f"{GA}.repository", "'vault-platform' is not a valid name"),
        ({f"{GA}.repository": ""}, f"{GA}.repository", "binds no exact 'repository' claim"),
        ({f"{GA}.repositoryId": DELETE}, f"{GA}.repositoryId", "is required but not set"),
        ({f"{GA}.repositoryOwnerId": DELETE}, f"{GA}.repositoryOwnerId", "is required but not set"),
        ({f"{GA}.repositoryId": "vault-platform"}, f"{GA}.repositoryId", "expected a whole number, got a string"),
        ({f"{GA}.repositoryOwnerId": 0}, f"{GA}.repositoryOwnerId", "0 is below the minimum of 1"),
        ({f"{GA}.audience": "vault-*"}, f"{GA}.audience", "the 'aud' claim 'vault-*' holds a glob ('*')"),
        ({f"{GA}.deployEnvironment": "prod*"}, f"{GA}.deployEnvironment", "'prod*' holds a glob ('*')"),
        ({f"{GA}.previewEnvironment": "*"}, f"{GA}.previewEnvironment", "'*' holds a glob ('*')"),
        ({f"{GA}.previewEnvironment": "prod"}, f"{GA}.previewEnvironment", "is the deploy environment 'prod'"),
        ({f"{GA}.audience": DELETE}, f"{GA}.audience", "is required but not set"),
        ({f"{GA}.previewPolicies": ["api-secrets"]}, f"{GA}.previewPolicies[0]",
         "policy 'api-secrets' reads secret values or credentials at 'secret/data/production/api-service'"),
        ({f"{GA}.previewPolicies": ["nope"]}, f"{GA}.previewPolicies[0]", "policy 'nope' is not declared"),
        ({f"{GA}.previewPolicies": ["signer"],
          f"{P}policies[1]": {"name": "signer", "rules": [{"path": "transit/sign/payments-receipts",
                                                           "capabilities": ["update"]}]}},
         f"{GA}.previewPolicies[0]", "policy 'signer' grants update on 'transit/sign/payments-receipts'"),
        ({f"{OIDC}.allowedRedirectUris": []}, f"{OIDC}.allowedRedirectUris", "is empty"),
        ({f"{OIDC}.allowedRedirectUris": DELETE}, f"{OIDC}.allowedRedirectUris", "is empty"),
        ({f"{OIDC}.allowedRedirectUris": ["http://vault.prod.internal/callback"]}, f"{OIDC}.allowedRedirectUris[0]",
         "is not an https URL"),
        ({f"{OIDC}.discoveryUrl": "http://login.example"}, f"{OIDC}.discoveryUrl", "is not an https issuer URL"),
        ({f"{GA}.issuer": "http://github.acme.example"}, f"{GA}.issuer", "is not an https issuer URL"),
        ({f"{GA}.issuerCaPem": "not a certificate"}, f"{GA}.issuerCaPem", "is not PEM certificates"),
        ({f"{OIDC}.discoveryCaPem": PRIVATE_CA.certificate_pem}, f"{OIDC}.discoveryCaPem",
         "holds no CA certificate"),
        ({f"{OIDC}.groups[1].policies": ["auditors"]}, f"{OIDC}.groups[1].policies[0]",
         "policy 'auditors' is not declared"),
        ({f"{OIDC}.groups[1].policies": ["vault-iac"]}, f"{OIDC}.groups[1].policies[0]",
         "'vault-iac' is CI's own policy"),
        ({f"{OIDC}.groups[1].policies": ["platform-admin"]}, f"{OIDC}.groups[1].policies",
         "platform-admin is already the group 'platform-team''s"),
        ({f"{OIDC}.groups[1].name": "platform-team"}, f"{OIDC}.groups[1].name", "a second group"),
        ({f"{OIDC}.tokenMaxTtl": "48h"}, f"{OIDC}.tokenMaxTtl", "above the cap"),
        ({f"{OIDC}.clientSecret": "hunter2"}, f"{OIDC}.clientSecret", "plaintext value where a secret is required"),
        ({f"{P}kubernetesAuth.path": "oidc"}, f"{P}kubernetesAuth.path", "is the oidc login's"),
    ])
    def test_refused_with_one_message(self, changes: dict[str, Any], key: str, problem: str) -> None:
        error = refusal("prod", changes, key)
        assert problem in error.problem
        assert str(error).startswith(f"stack 'prod', config key '{error.key}': ")
        assert "Fix: " in str(error)


class TestJwtRoleRule:
    GOOD = {"repository": "acme/vault", "repository_id": "612345678", "repository_owner_id": "87654321",
            "environment": "prod"}

    @pytest.mark.parametrize(("claims", "claims_type", "audiences", "problem"), [
        (GOOD, "string", ["a"], None),
        ({**GOOD, "ref": "refs/heads/main"}, "string", ["a"], None),
        (GOOD, "glob", ["a"], "bound_claims_type is 'glob'"),
        ({**GOOD, "environment": None}, "string", ["a"], "binds no exact 'environment' claim"),
        ({**GOOD, "repository_id": None}, "string", ["a"], "binds no exact 'repository_id' claim"),
        ({**GOOD, "repository_owner_id": ""}, "string", ["a"], "binds no exact 'repository_owner_id' claim"),
        ({**GOOD, "repository": ""}, "string", ["a"], "binds no exact 'repository' claim"),
        ({**GOOD, "ref": "refs/heads/*"}, "string", ["a"], "the 'ref' claim 'refs/heads/*' holds a glob"),
        (GOOD, "string", [], "binds no audience"),
    ])
    def test_binding(self, claims: dict[str, str], claims_type: str, audiences: list[str], problem: str | None) -> None:
        found = rules.jwt_role_binding(claims, claims_type, audiences)
        assert found == problem if problem is None else (found is not None and problem in found)


def probes(spec: EnvironmentSpec) -> tuple[list[str], list[str]]:
    """(secret paths: values and credentials, config paths the program writes) of ``spec``."""
    secret = [f"{spec.kv.mount}/data/{s.path}" for s in spec.kv.secrets]
    secret += [f"{spec.kv.mount}/metadata/{s.path}" for s in spec.kv.secrets]
    config = [f"sys/policies/acl/{name}" for name in ("vault-iac", "vault-preview", "platform-admin")]
    config += [f"sys/mounts/{spec.kv.mount}", f"sys/auth/{spec.kubernetes_auth_path}", "sys/audit/file",
               "auth/token/create", f"{spec.kv.mount}/config"]
    config += [f"auth/{spec.kubernetes_auth_path}/role/{app.name}" for app in spec.apps]
    if spec.database is not None:
        secret += [f"{spec.database.mount}/creds/{r.name}" for r in spec.database.roles]
        secret += [f"{spec.database.mount}/static-creds/{r.name}" for r in spec.database.static_roles]
        config += [f"{spec.database.mount}/config/{c.name}" for c in spec.database.connections]
        config += [f"{spec.database.mount}/roles/{r.name}" for r in spec.database.roles]
    if spec.transit is not None:
        secret += [f"{spec.transit.mount}/{op}/{k.name}" for k in spec.transit.keys
                   for op in ("encrypt", "decrypt", "rewrap", "sign", "export/encryption-key")]
        config += [f"{spec.transit.mount}/keys/{k.name}" for k in spec.transit.keys]
    if spec.pki is not None:
        secret += [f"{spec.pki.intermediate.mount}/{op}/{r.name}" for r in spec.pki.roles for op in ("issue", "sign")]
        config += [f"{spec.pki.intermediate.mount}/roles/{r.name}" for r in spec.pki.roles]
    if spec.github_actions is not None:
        config += [f"auth/{spec.github_actions.path}/role/{r.name}" for r in spec.github_actions.roles]
        config += [f"auth/{spec.github_actions.path}/config"]
    if spec.people is not None:
        config += [f"auth/{spec.people.path}/config", f"auth/{spec.people.path}/role/people", "identity/group/id/x"]
    return secret, config


class TestReadOnlyPolicies:
    """The preview role's and the operators' policies, with the default policy, under Vault's ACL rules."""

    @pytest.mark.parametrize("stack", STACKS)
    @pytest.mark.parametrize("policy", ["vault-preview", "operations-readonly"])
    def test_write_nothing_read_no_secret_issue_nothing(self, stack: str, policy: str) -> None:
        acl = Acl.of_texts({policy: policy_text(policy)})
        secret, config = probes(spec_of(stack))
        for path in secret:
            assert acl.capabilities(path) == frozenset(), path
        for path in config:
            granted = acl.capabilities(path)
            assert not granted & set(WRITES), path
            assert "sudo" not in granted or granted <= {"read", "list", "sudo"}, path  # sudo only to read

    @pytest.mark.parametrize("stack", ANY_STACK)
    def test_the_preview_role_reads_what_a_refresh_reads(self, any_declared: dict[str, Declaration],
                                                         stack: str) -> None:
        # Every read call of the stack's resources (vault-iac-calls.yaml, from the provider's Read of each
        # type): a pull request's `preview --refresh` (tests/e2e runs it against a real Vault). KV secrets
        # are never read back, so no read of a secret value is among them.
        acl = Acl.of_texts({"vault-preview": policy_text("vault-preview")})
        resources = [(r.name, r.type, r.inputs) for r in any_declared[stack].resources]
        reads = [call for call in calls(resources, commands=False) if call.needed_by.endswith(" read")]
        assert reads
        assert [call for call in reads if not all(acl.allows(capability, call.path)
                                                  for capability in call.capabilities)] == []
        assert not [call for call in reads if "/data/" in call.path or "/creds/" in call.path]
        assert acl.allows("read", "auth/token/lookup-self")  # the default policy: the provider's first call

    def test_the_iac_policy_manages_both_logins(self) -> None:
        acl = Acl.of_texts({"vault-iac": policy_text("vault-iac")})
        for path in ("sys/auth/github-actions", "sys/auth/oidc", "auth/github-actions/config",
                     "auth/github-actions/role/deploy", "auth/oidc/config", "auth/oidc/role/people",
                     "identity/group", "identity/group/id/x", "identity/group-alias", "identity/group-alias/id/x"):
            assert acl.allows("update", path), path
        assert acl.allows("read", "identity/group/name/platform-team")


class FakeVault:
    """Stands in for ``hvac.Client``: records each client made and each token revoked."""

    made: list[dict[str, Any]] = []
    revoked: list[str] = []
    refuse = False

    def __init__(self, **kwargs: Any) -> None:
        FakeVault.made.append(kwargs)
        self.auth = self
        self.token = self
        self._token = kwargs.get("token")

    def revoke_self(self) -> None:
        if FakeVault.refuse:
            raise hvac_exceptions.Forbidden("permission denied", method="post", url="/v1/auth/token/revoke-self")
        FakeVault.revoked.append(str(self._token))


class TestVaultLoginCommand:
    """``platformctl vault-login``: the job's Vault token, from its OIDC token; ``--revoke`` ends it."""

    @pytest.fixture
    def vault(self, monkeypatch: pytest.MonkeyPatch) -> type[FakeVault]:
        monkeypatch.setattr("platformctl.commands.vault_login_command.hvac.Client", FakeVault)
        monkeypatch.setattr(FakeVault, "made", [])
        monkeypatch.setattr(FakeVault, "revoked", [])
        monkeypatch.setattr(FakeVault, "refuse", False)
        return FakeVault

    def test_revoke_ends_the_jobs_token_at_the_stacks_vault(self, vault: type[FakeVault], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
        (tmp_path / "vault-token").write_text("s.job-token\n")
        monkeypatch.setenv("TERRAFORM_VAULT_TOKEN_FILENAME", str(tmp_path / "vault-token"))
        assert platformctl_main(["vault-login", "staging", "--revoke"]) == 0
        assert vault.made == [{"url": "https://vault.staging.internal:8200", "token": "s.job-token",
                               "verify": str(ROOT / "stacks/ca/staging.pem")}]
        assert vault.revoked == ["s.job-token"]
        assert capsys.readouterr().err == "staging: the job's Vault token is revoked\n"

    def test_revoke_without_a_token_does_nothing(self, vault: type[FakeVault], monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
        monkeypatch.delenv("TERRAFORM_VAULT_TOKEN_FILENAME", raising=False)
        assert platformctl_main(["vault-login", "prod", "--revoke"]) == 0
        assert (vault.made, capsys.readouterr().err) == (
            [], "prod: no Vault token to revoke (TERRAFORM_VAULT_TOKEN_FILENAME names no file holding one)\n")

    def test_a_refused_revocation_exits_1(self, vault: type[FakeVault], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        (tmp_path / "vault-token").write_text("s.job-token\n")
        monkeypatch.setenv("TERRAFORM_VAULT_TOKEN_FILENAME", str(tmp_path / "vault-token"))
        vault.refuse = True
        assert platformctl_main(["vault-login", "dev", "--revoke"]) == 1
        assert capsys.readouterr().err == ("error: dev: Vault refused to revoke the job's token "
                                           "(auth/token/revoke-self): permission denied, on post "
                                           "/v1/auth/token/revoke-self\n")

    @pytest.mark.parametrize("stack", COMMITTED)
    def test_the_request_names_the_stacks_jwt_method_and_the_jobs_role(self, stack: str) -> None:
        access = spec(stack).vault
        assert access is not None
        # The CA file as the provider opens it: relative to the project's root, wherever the command runs.
        ca_cert_file = str(ROOT / access.ca_cert_file) if access.ca_cert_file is not None else None
        assert login_request(spec(stack)) == JwtLoginRequest(
            address=access.address.rstrip("/"), ca_cert_file=ca_cert_file, mount="github-actions", role="deploy")

    def test_a_stack_logging_in_with_a_token_has_no_jwt_login(self) -> None:
        assert login_request(spec_of("prod")) == (
            "stack 'prod' has no GitHub Actions login (vault-platform:githubActions with vault:address, and no "
            "vault:token)")

    def test_without_the_oidc_token_it_says_how_to_get_one(self, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
        monkeypatch.delenv("TERRAFORM_VAULT_AUTH_JWT", raising=False)
        assert platformctl_main(["vault-login", "prod"]) == 2
        assert capsys.readouterr().err == (
            "error: TERRAFORM_VAULT_AUTH_JWT is not set: request the job's OIDC token first (core.getIDToken with "
            "the stack's audience, `platformctl oidc-audience <stack>`)\n")

    def test_the_audience_command_prints_the_stacks_audience(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert platformctl_main(["oidc-audience", "prod"]) == 0
        github = spec("prod").github_actions
        assert github is not None
        assert capsys.readouterr().out == f"{github.audience}\n"


WORKFLOWS = ROOT / ".github" / "workflows"
TOKEN_STEP = "core.exportVariable('TERRAFORM_VAULT_AUTH_JWT', await core.getIDToken(process.env.AUDIENCE));"


class TestWorkflowLogin:
    """The jobs that reach Vault log in with their own OIDC token, requested for the stack's audience."""

    @pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.yml")), ids=lambda p: p.name)
    def test_no_workflow_holds_or_reads_a_vault_token(self, path: Path) -> None:
        text = path.read_text()
        assert "vault:token" not in text
        assert not [line for line in text.splitlines() if "VAULT_TOKEN" in line and "secrets." in line]
        assert "VAULT_TOKEN: " not in text  # never an env value: only what vault-login prints, masked

    @pytest.mark.parametrize(("workflow", "role"), [("pulumi-up.yml", "deploy"), ("pr-preview.yml", "preview")])
    def test_one_login_for_the_stacks_audience_before_every_vault_step(self, workflow: str, role: str) -> None:
        document = yaml.safe_load((WORKFLOWS / workflow).read_text())
        (job,) = document["jobs"].values()
        assert (job["permissions"]["id-token"], job["env"]["VAULT_PLATFORM_CI_ROLE"]) == ("write", role)
        steps = job["steps"]
        (audience,) = [step for step in steps if step.get("id") == "vault"]
        assert audience["run"].splitlines()[0] == 'audience=$(python -m platformctl oidc-audience "$STACK")'
        (oidc,) = [index for index, step in enumerate(steps) if "TERRAFORM_VAULT_AUTH_JWT" in str(step)]
        assert steps[oidc]["uses"] == "actions/github-script@60a0d83039c74a4aee543508d2ffcb1c3799cdea"
        assert (steps[oidc]["env"], steps[oidc]["with"]) == ({"AUDIENCE": "${{ steps.vault.outputs.audience }}"},
                                                             {"script": TOKEN_STEP})
        # Exchanged at once, while it is fresh; every step that reaches Vault reads the job's token file.
        assert 'python -m platformctl vault-login "$STACK" > "$RUNNER_TEMP/vault-token"' in steps[oidc + 1]["run"]
        vault_steps = [index for index, step in enumerate(steps) if step.get("uses", "").startswith("pulumi/actions")
                       or "platformctl rollout" in step.get("run", "")]
        assert vault_steps
        assert steps.index(audience) < oidc < min(vault_steps)
