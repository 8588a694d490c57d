"""Every policy of the pack: a resource that passes and one that is reported, with the exact message.

Resources start from what the committed stacks really declare (the mock engine's record: camelCase
properties, numbers as floats, secrets wrapped) and are then altered, as a pull request would."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import Secret
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import unknown_checking_proxy

from platformctl.core.declaration import Declaration, unwrap
from policies.guardrails import checks
from policies.guardrails.checks import POLICIES, configuration_protection_problem, environment, stated_removals
from vaultmodel.rules import grants_whole_mount

from .harness import declared_args, not_applicable, reported, resource_args, stack_args

RELEASE = "vault-cluster-release"
DB_CONNECTION = "vault-database-postgres"
URL = "postgresql://{{username}}:{{password}}@"
ROLE = "vault-kubernetes-auth-api-service"
DB_ROLE = "vault-database-api-role"
DROP = object()


def altered(props: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``props`` with each dotted path set (``DROP`` removes it)."""
    result = copy.deepcopy(dict(props))
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = result
        for step in parents:
            node = node[step]
        if value is DROP:
            del node[last]
        else:
            node[last] = value
    return result


def check(declared: dict[str, Declaration], tags: dict[str, dict[str, str]], policy: str, stack: str, name: str,
          changes: Mapping[str, Any], *, protect: bool | None = None,
          config: Mapping[str, Any] | None = None) -> list[str]:
    resource = declared[stack].named(name)
    args = declared_args(resource, tags[stack], config)
    args.props = altered(resource.inputs, changes)
    if protect is not None:
        args.opts.protect = protect
    return reported(policy, args)


DEPLOY = "vault-github-actions-deploy"
JWT_FIX = (": bind the exact repository (name, repository_id, repository_owner_id) and GitHub Environment with "
           "boundClaimsType 'string', and the stack's audience")


class TestDeclaredResources:
    """(policy, stack, resource, changes) -> exactly what is reported; [] passes."""

    CASES: dict[str, tuple[str, str, str, dict[str, Any], list[str]]] = {
        # staging and prod: HA with Raft, an odd number of voters, at least 3
        "ha: prod as committed": ("vault-ha-raft", "prod", RELEASE, {}, []),
        "ha: prod at 2 replicas": ("vault-ha-raft", "prod", RELEASE, {"values.server.ha.replicas": 2.0}, [
            "server.ha.replicas: 2 replicas is even; Raft needs an odd number to keep a majority through a failure; "
            "use 3 or 5",
            "server.ha.replicas: 2 replica(s) cannot survive a node failure in prod; use 3 or 5"]),
        "ha: staging at 1 replica": ("vault-ha-raft", "staging", RELEASE, {"values.server.ha.replicas": 1.0}, [
            "server.ha.replicas: 1 replica(s) cannot survive a node failure in staging; use 3 or 5"]),
        "ha: HA off": ("vault-ha-raft", "prod", RELEASE, {"values.server.ha.enabled": False}, [
            "Vault must run in HA mode in prod: set server.ha.enabled to true"]),
        "ha: Raft off": ("vault-ha-raft", "staging", RELEASE, {"values.server.ha.raft.enabled": False}, [
            "Vault must use Raft storage in staging: set server.ha.raft.enabled to true"]),
        "ha: dev is a single server": ("vault-ha-raft", "dev", RELEASE, {}, []),
        # staging and prod: TLS
        "tls: prod as committed": ("vault-tls", "prod", RELEASE, {}, []),
        "tls: off in prod": ("vault-tls", "prod", RELEASE, {"values.global.tlsDisable": True}, [
            "global.tlsDisable: TLS may only be turned off in dev, not in prod; set it to false"]),
        "tls: the chart's default (off) in staging": ("vault-tls", "staging", RELEASE,
                                                      {"values.global.tlsDisable": DROP}, [
            "global.tlsDisable: TLS may only be turned off in dev, not in staging; set it to false"]),
        "tls: off in dev": ("vault-tls", "dev", RELEASE, {}, []),
        # staging and prod: the injector
        "injector: prod as committed": ("vault-injector", "prod", RELEASE, {}, []),
        "injector: off": ("vault-injector", "prod", RELEASE, {"values.injector.enabled": False}, [
            "the agent injector must run in prod: set injector.enabled to true"]),
        "injector: one replica": ("vault-injector", "staging", RELEASE, {"values.injector.replicas": 1.0}, [
            "injector.replicas: one injector replica is a single point of failure in staging: no pod with injected "
            "secrets can start while it is down; use 2 or more"]),
        "injector: dev": ("vault-injector", "dev", RELEASE, {"values.injector.replicas": 1.0}, []),
        # staging and prod: a disruption budget
        "budget: prod as committed": ("vault-disruption-budget", "prod", RELEASE, {}, []),
        "budget: off": ("vault-disruption-budget", "prod", RELEASE,
                        {"values.server.ha.disruptionBudget.enabled": False}, [
            "the Vault servers need a disruption budget in prod: set server.ha.disruptionBudget.enabled to true"]),
        # staging and prod: the chart pinned
        "chart: prod as committed": ("chart-version-pinned", "prod", RELEASE, {}, []),
        "chart: a range": ("chart-version-pinned", "prod", RELEASE, {"version": "^0.34"}, [
            "chart version '^0.34' is not an exact version: pin an exact version such as 0.34.1"]),
        "chart: no version": ("chart-version-pinned", "staging", RELEASE, {"version": DROP}, [
            "the chart version is not pinned: set an exact version such as 0.34.1"]),
        # every stack: Kubernetes auth bindings
        "bindings: as committed": ("kubernetes-auth-bindings", "dev", ROLE, {}, []),
        "bindings: every namespace": ("kubernetes-auth-bindings", "dev", ROLE,
                                      {"boundServiceAccountNamespaces": ["*"]}, [
            "boundServiceAccountNamespaces: binds every namespace ('*'), which lets any workload in the cluster "
            "log in as this application; bind the application's own namespace"]),
        "bindings: a glob of service accounts": ("kubernetes-auth-bindings", "prod", ROLE,
                                                 {"boundServiceAccountNames": ["api-*"]}, [
            "boundServiceAccountNames: binds every service account ('*'), which lets any workload in the cluster "
            "log in as this application; bind the application's own service account"]),
        # every stack: GitHub Actions JWT roles bind exact claims (the people's OIDC role is not one)
        "jwt: deploy as committed": ("jwt-role-claims", "prod", DEPLOY, {}, []),
        "jwt: preview as committed": ("jwt-role-claims", "dev", "vault-github-actions-preview", {}, []),
        "jwt: people's OIDC role": ("jwt-role-claims", "prod", "vault-people-role", {}, []),
        "jwt: glob claims": ("jwt-role-claims", "prod", DEPLOY, {"boundClaimsType": "glob"}, [
            f"role 'deploy' bound_claims_type is 'glob': claims must be compared as exact strings, or '*' would "
            f"match any repository or environment{JWT_FIX}"]),
        "jwt: a glob in a claim": ("jwt-role-claims", "staging", DEPLOY, {"boundClaims.environment": "*"}, [
            f"role 'deploy' the 'environment' claim '*' holds a glob ('*'){JWT_FIX}"]),
        "jwt: no repository": ("jwt-role-claims", "prod", DEPLOY, {"boundClaims.repository": DROP}, [
            f"role 'deploy' binds no exact 'repository' claim, so a job of any repository could log in{JWT_FIX}"]),
        "jwt: no repository id": ("jwt-role-claims", "prod", DEPLOY, {"boundClaims.repository_id": DROP}, [
            f"role 'deploy' binds no exact 'repository_id' claim, so a job of any repository_id could "
            f"log in{JWT_FIX}"]),
        "jwt: no owner id": ("jwt-role-claims", "dev", "vault-github-actions-preview",
                             {"boundClaims.repository_owner_id": DROP}, [
            f"role 'preview' binds no exact 'repository_owner_id' claim, so a job of any repository_owner_id could "
            f"log in{JWT_FIX}"]),
        "jwt: no environment": ("jwt-role-claims", "prod", DEPLOY, {"boundClaims.environment": ""}, [
            f"role 'deploy' binds no exact 'environment' claim, so a job of any environment could log in{JWT_FIX}"]),
        "jwt: no audience": ("jwt-role-claims", "prod", DEPLOY, {"boundAudiences": []}, [
            "role 'deploy' binds no audience, so a token GitHub issued for any other service would be "
            f"accepted{JWT_FIX}"]),
        # every stack: token TTLs
        "tokens: as committed": ("token-ttl-caps", "prod", ROLE, {}, []),
        "tokens: a TTL over the cap": ("token-ttl-caps", "prod", ROLE, {"tokenTtl": 28800.0, "tokenMaxTtl": 28800.0}, [
            "tokenTtl 8h is above the cap of 4h (an unset TTL is Vault's default of 32 days)"]),
        "tokens: a max TTL over the cap": ("token-ttl-caps", "dev", ROLE, {"tokenMaxTtl": 172800.0}, [
            "tokenMaxTtl 2d is above the cap of 1d (an unset TTL is Vault's default of 32 days)"]),
        "tokens: TTL above max TTL": ("token-ttl-caps", "prod", ROLE, {"tokenTtl": 7200.0, "tokenMaxTtl": 3600.0}, [
            "2h is above tokenMaxTtl (1h) (an unset TTL is Vault's default of 32 days)"]),
        "tokens: no TTL": ("token-ttl-caps", "staging", ROLE, {"tokenTtl": DROP}, [
            "tokenTtl 32d is above the cap of 4h (an unset TTL is Vault's default of 32 days)",
            "32d is above tokenMaxTtl (4h) (an unset TTL is Vault's default of 32 days)"]),
        # every stack: database role TTLs
        # outside dev, Vault verifies the database server (the spec's rule, vaultmodel/rules.py)
        "database tls: prod as committed": ("database-tls", "prod", DB_CONNECTION, {}, []),
        "database tls: require in prod": ("database-tls", "prod", DB_CONNECTION, {
            "postgresql.connectionUrl": URL + "postgres.prod.internal:5432/app?sslmode=require"}, [
            "postgresql.connectionUrl: require does not verify the server in prod: whoever answers for the host name "
            "gets the admin password"]),
        "database tls: no sslmode (libpq's prefer) and a short host in staging": (
            "database-tls", "staging", DB_CONNECTION, {"postgresql.connectionUrl": URL + "postgres:5432/app"}, [
                "postgresql.connectionUrl: prefer does not verify the server in staging: whoever answers for the host "
                "name gets the admin password",
                "postgresql.connectionUrl: 'postgres' is not a fully qualified host name: staging connections verify "
                "the name the server's certificate carries, and a short name resolves through the search domains"]),
        "database tls: verify-ca without the database's CA": ("database-tls", "prod", DB_CONNECTION, {
            "postgresql.connectionUrl": URL + "postgres.prod.internal:5432/app?sslmode=verify-ca"}, [
            "postgresql.connectionUrl: verify-ca against the public roots accepts any certificate they signed, for "
            "any name"]),
        "database tls: verify-ca with the database's CA": ("database-tls", "prod", DB_CONNECTION, {
            "postgresql.connectionUrl": URL + "postgres.prod.internal:5432/app?sslmode=verify-ca",
            "postgresql.tlsCa": "-----BEGIN CERTIFICATE-----"}, []),
        "database tls: an IP address": ("database-tls", "prod", DB_CONNECTION, {
            "postgresql.connectionUrl": URL + "10.0.0.5:5432/app?sslmode=verify-full"}, [
            "postgresql.connectionUrl: '10.0.0.5' is an IP address: prod connections verify the name the server's "
            "certificate carries"]),
        "database tls: dev's in-cluster instance": ("database-tls", "dev", DB_CONNECTION, {}, []),
        "database: as committed": ("database-role-ttls", "prod", DB_ROLE, {}, []),
        "database: default above max": ("database-role-ttls", "dev", DB_ROLE,
                                        {"defaultTtl": 7200.0, "maxTtl": 3600.0}, [
            "2h is above maxTtl (1h) (an unset TTL is Vault's default of 32 days)"]),
        "database: max over a day": ("database-role-ttls", "prod", DB_ROLE, {"maxTtl": 172800.0}, [
            "maxTtl 2d is above the cap of 1d (an unset TTL is Vault's default of 32 days)"]),
        "database: no max": ("database-role-ttls", "staging", DB_ROLE, {"maxTtl": DROP}, [
            "maxTtl 32d is above the cap of 1d (an unset TTL is Vault's default of 32 days)"]),
        # prod: check-and-set
        "cas: prod as committed": ("kv-check-and-set", "prod", "vault-kv-config", {}, []),
        "cas: off in prod": ("kv-check-and-set", "prod", "vault-kv-config", {"casRequired": False}, [
            "casRequired: prod writes must use check-and-set, so that two writers cannot silently overwrite each "
            "other; set casRequired to true"]),
        "cas: off in staging": ("kv-check-and-set", "staging", "vault-kv-config", {"casRequired": False}, []),
        # every stack: fields logged in clear, domains a PKI role issues for
        "audit: prod as committed": ("audit-clear-fields", "prod", "vault-pki-int-mount", {}, []),
        "audit: a private key in clear": ("audit-clear-fields", "prod", "vault-pki-int-mount",
                                          {"auditNonHmacResponseKeys": ["serial_number", "private_key"]}, [
            "auditNonHmacResponseKeys: 'private_key' can carry a secret or a private key and is never logged in "
            "clear; remove it from the list"]),
        "audit: a password in clear": ("audit-clear-fields", "prod", "vault-kv-mount",
                                       {"auditNonHmacRequestKeys": ["db_password"]}, [
            "auditNonHmacRequestKeys: 'db_password' can carry a secret or a private key and is never logged in "
            "clear; remove it from the list"]),
        "pki: prod as committed": ("pki-owned-domains", "prod", "vault-pki-payments-api", {}, []),
        "pki: a public suffix": ("pki-owned-domains", "prod", "vault-pki-payments-api",
                                 {"allowedDomains": ["co.uk"], "allowSubdomains": True}, [
            "allowedDomains: 'co.uk' is a public suffix: names under it belong to whoever registers them; list "
            "the organisation's own domains"]),
        "pki: a single label with subdomains": ("pki-owned-domains", "prod", "vault-pki-payments-api",
                                                {"allowedDomains": ["svc"], "allowSubdomains": True}, [
            "allowedDomains: 'svc' is a top-level name: with subdomains allowed, the role would issue for every "
            "*.svc; list the organisation's own domains"]),
        "pki: a name below a suffix": ("pki-owned-domains", "prod", "vault-pki-payments-api",
                                       {"allowedDomains": ["payments.example.co.uk"], "allowSubdomains": True}, []),
    }

    @pytest.mark.parametrize("case", list(CASES))
    def test_case(self, declared: dict[str, Declaration], tags: dict[str, dict[str, str]], case: str) -> None:
        policy, stack, name, changes, expected = self.CASES[case]
        assert check(declared, tags, policy, stack, name, changes) == expected


class TestConfig:
    def test_token_cap_is_configurable(self, declared: dict[str, Declaration],
                                       tags: dict[str, dict[str, str]]) -> None:
        assert check(declared, tags, "token-ttl-caps", "prod", ROLE, {}, config={"maxTokenTtl": 1800}) == [
            "tokenTtl 1h is above the cap of 30m (an unset TTL is Vault's default of 32 days)"]

    def test_database_cap_is_configurable(self, declared: dict[str, Declaration],
                                          tags: dict[str, dict[str, str]]) -> None:
        assert check(declared, tags, "database-role-ttls", "prod", DB_ROLE, {}, config={"maxTtl": 3600}) == [
            "maxTtl 4h is above the cap of 1h (an unset TTL is Vault's default of 32 days)"]


class TestProtected:
    @pytest.mark.parametrize(("stack", "name", "protect", "expected"), [
        ("prod", RELEASE, True, []),
        ("prod", RELEASE, False, ["vault-cluster-release holds state and must be protected in prod: declare it "
                                  "with pulumi.ResourceOptions(protect=True)"]),
        ("prod", "vault-cluster-namespace", False, [
            "vault-cluster-namespace holds state and must be protected in prod: declare it with "
            "pulumi.ResourceOptions(protect=True)"]),
        ("staging", RELEASE, False, []),
        ("prod", "vault-kv-mount", False, []),  # the configuration layer's: protect-configuration
    ])
    def test_protect(self, declared: dict[str, Declaration], tags: dict[str, dict[str, str]], stack: str, name: str,
                     protect: bool, expected: list[str]) -> None:
        assert check(declared, tags, "protect-stateful", stack, name, {}, protect=protect) == expected


def unprotected(path: str) -> list[str]:
    return [f"{path} holds state only Vault has (secrets, keys, a CA, the audit trail) and is not protected: a "
            "plan could delete it. Declare it with pulumi.ResourceOptions(protect=True), or, to remove it, state "
            "it in the stack's vault-platform:removals first"]


class TestConfigurationProtected:
    """Mounts, auth methods, audit devices, transit keys and CAs are protected in every tier: the engine
    then refuses any plan that would delete one (a lost login, a rename, a removed section)."""

    @pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
    @pytest.mark.parametrize(("name", "path"), [
        ("vault-kv-mount", "sys/mounts/secret"),
        ("vault-kubernetes-auth-backend", "sys/auth/kubernetes"),
        ("vault-audit-file", "sys/audit/file"),
        ("vault-transit-payments-card-data", "transit/keys/payments-card-data"),
        ("vault-pki-root-cert", "sys/mounts/pki"),
        ("vault-pki-int-csr", "sys/mounts/pki_int"),
        ("vault-pki-int-set-signed", "sys/mounts/pki_int"),
    ])
    def test_unprotected_in_any_tier_is_refused(self, declared: dict[str, Declaration],
                                                tags: dict[str, dict[str, str]], stack: str, name: str,
                                                path: str) -> None:
        assert check(declared, tags, "protect-configuration", stack, name, {}, protect=True) == []
        assert check(declared, tags, "protect-configuration", stack, name, {}, protect=False) == unprotected(path)

    @pytest.mark.parametrize("name", ["vault-kv-config", "vault-kubernetes-auth-api-service", RELEASE])
    def test_other_resources_are_not_its_concern(self, declared: dict[str, Declaration],
                                                 tags: dict[str, dict[str, str]], name: str) -> None:
        assert check(declared, tags, "protect-configuration", "dev", name, {}, protect=False) == []

    @pytest.mark.parametrize(("resource_type", "props", "removals", "refused"), [
        ("vault:index/mount:Mount", {"path": "transit"}, ("sys/mounts/transit",), False),
        ("vault:index/mount:Mount", {"path": "transit"}, ("sys/mounts/pki",), True),
        ("vault:transit/secretBackendKey:SecretBackendKey", {"backend": "transit", "name": "k"},
         ("transit/keys/k",), False),
        ("vault:transit/secretBackendKey:SecretBackendKey", {"backend": "transit", "name": "k"},
         ("sys/mounts/transit",), False),  # the mount goes, and every key in it
        ("vault:transit/secretBackendKey:SecretBackendKey", {"backend": "transit", "name": "k"},
         ("transit/keys/other",), True),
        ("vault:index/audit:Audit", {"type": "file"}, (), True),  # path defaults to the type
        ("vault:index/audit:Audit", {"type": "file"}, ("sys/audit/file",), False),
        ("vault:jwt/authBackend:AuthBackend", {"path": "github"}, ("sys/auth/github",), False),
        ("vault:pkiSecret/secretBackendRootCert:SecretBackendRootCert", {"backend": "pki"}, ("sys/auth/pki",), True),
    ])
    def test_a_stated_removal_may_be_unprotected(self, resource_type: str, props: dict[str, str],
                                                 removals: tuple[str, ...], refused: bool) -> None:
        problem = configuration_protection_problem(resource_type, props, False, removals)
        assert (problem is not None) is refused

    def test_the_stack_file_is_where_the_statement_is_read(self, tmp_path: Path) -> None:
        (tmp_path / "stacks").mkdir()
        (tmp_path / "stacks" / "Pulumi.dev.yaml").write_text(
            "config:\n  vault-platform:removals: [sys/mounts/transit, transit/keys/k]\n")
        assert stated_removals("dev", tmp_path) == ("sys/mounts/transit", "transit/keys/k")
        assert stated_removals("prod", tmp_path) == ()  # no stack file: nothing stated

    def test_stateful_resources_are_protected_as_declared(self, declared: dict[str, Declaration]) -> None:
        assert declared["prod"].named(RELEASE).protect is True


FIX = ("is passed in plaintext: make it a secret (pulumi config set --secret, {fromSecret: <key>} in the spec, or "
       "pulumi.Output.secret)")


class TestPlaintextSecrets:
    @pytest.mark.parametrize(("name", "reveal", "expected"), [
        ("vault-vault", None, []),
        ("vault-people-backend", None, []),
        ("vault-people-backend", "oidcClientSecret", [f"oidcClientSecret {FIX}"]),
        ("vault-database-postgres", None, []),
        ("vault-database-postgres", "postgresql", [f"postgresql.passwordWo {FIX}"]),
        ("vault-kv-api-service", "dataJson", [f"dataJson {FIX}"]),
    ])
    def test_declared(self, declared: dict[str, Declaration], tags: dict[str, dict[str, str]], name: str,
                      reveal: str | None, expected: list[str]) -> None:
        resource = declared["prod"].named(name)
        changes = {reveal: unwrap(resource.inputs[reveal])} if reveal else {}
        assert check(declared, tags, "no-plaintext-secrets", "prod", name, changes) == expected

    @pytest.mark.parametrize(("props", "expected"), [
        ({"values": {"server": {"extraEnvironmentVars": {"VAULT_TOKEN": "hvs.abc"}}}},
         [f"values.server.extraEnvironmentVars.VAULT_TOKEN {FIX}"]),
        ({"values": {"server": {"extraEnvironmentVars": {"VAULT_TOKEN": Secret("hvs.abc")}}}}, []),
        ({"connectionUrl": "postgresql://admin:hunter2@db:5432/app"}, [f"connectionUrl {FIX}"]),
        ({"connectionUrl": "postgresql://{{username}}:{{password}}@db:5432/app"}, []),
        ({"tokenReviewerJwt": "eyJhbGciOi"}, [f"tokenReviewerJwt {FIX}"]),
        ({"apiKey": "k-123", "secretName": "vault-tls", "kmsKeyId": "alias/k", "topologyKey": "kubernetes.io/hostname",
          "skipChildToken": "false", "tokenTtl": 3600.0}, [f"apiKey {FIX}"]),
    ])
    def test_written(self, props: dict[str, Any], expected: list[str]) -> None:
        assert reported("no-plaintext-secrets", resource_args("kubernetes:helm.sh/v3:Release", props)) == expected

    def test_not_applicable_where_the_sdk_decrypts_secrets(self) -> None:
        # Under the CLI the analyzer hands a policy its own proxy of decrypted properties.
        args = resource_args("pulumi:providers:vault", unknown_checking_proxy({"token": "decrypted"}))
        with pytest.raises(_NotApplicableError):
            reported("no-plaintext-secrets", args)


class TestAclPolicies:
    """The rule itself is tested in tests/test_access_rules.py, in the spec and in the pack alike."""

    @pytest.mark.parametrize(("path", "whole"), [
        # a whole mount or more
        ("*", True), ("+/data/app", True), ("pki*", True), ("secret/*", True), ("secret/+/*", True),
        ("secret/+", True),
        # a whole area of secret material: KV, database, PKI, transit
        ("secret/data/*", True), ("secret/data/+", True), ("secret/metadata/*", True),
        ("secret/data/+/*", True), ("kv/data/*", True),
        ("database/creds/*", True), ("database/static-creds/+", True),
        ("pki_int/issue/*", True), ("pki/sign/+", True),
        ("transit/encrypt/*", True), ("transit/decrypt/+", True), ("transit/rewrap/*", True),
        ("transit/export/*", True),
        # a * that cuts into an area's name
        ("secret/d*", True), ("secret/data*", True), ("database/creds*", True), ("pki/iss*", True),
        # narrower than an area, or not secret material
        ("secret/data/production/*", False), ("secret/data/production/api", False),
        ("secret/data/+/api", False), ("secret/+/api", False), ("database/creds/api-role", False),
        ("database/roles/*", False), ("database/static-roles/*", False), ("database/config/*", False),
        ("pki_int/issue/web", False), ("pki/issuer/*", False), ("pki_int/roles/*", False),
        ("pki/sign-intermediate", False), ("pki/root/sign-intermediate", False),
        ("transit/keys/*", False), ("transit/keys*", False), ("transit/encrypt/api", False),
        ("sys/mounts/*", False), ("sys/policies/acl/*", False), ("auth/kubernetes/role/*", False),
    ])
    def test_grants_whole_mount(self, path: str, whole: bool) -> None:
        assert grants_whole_mount(path) is whole


class TestEnvironment:
    @pytest.mark.parametrize(("tags", "stack", "expected"), [
        ({"environment": "dev"}, "prod", "prod"),  # a stack file cannot tag prod into dev's rules
        ({"environment": "staging"}, "prod-eu", "staging"),
        ({}, "prod-eu", "prod"),
        ({}, "dev", "dev"),
    ])
    def test_the_stack_name_decides_when_it_is_a_tier(self, tags: dict[str, str], stack: str, expected: str) -> None:
        assert environment(tags, f"urn:pulumi:{stack}::vault-platform::pulumi:pulumi:Stack::x") == expected


class TestStackPolicies:
    @pytest.mark.parametrize(("stack_tags", "expected"), [
        ({"owner": "platform-team", "environment": "prod"}, []),
        ({}, ["the stack has no 'owner' tag: add it under pulumi:tags in its stack file",
              "the stack has no 'environment' tag: add it under pulumi:tags in its stack file"]),
        ({"owner": "platform-team", "environment": "qa"},
         ["the environment tag 'qa' is not one of dev, staging, prod"]),
        ({"owner": "platform-team", "environment": "dev"},
         ["the environment tag 'dev' contradicts the stack 'prod': tag it 'prod'"]),
    ])
    def test_tags(self, declared: dict[str, Declaration], stack_tags: dict[str, str], expected: list[str],
                  monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(checks, "declared_tags", lambda stack: {})  # a stack file without pulumi:tags
        assert reported("stack-tags", stack_args(declared["prod"], stack_tags)) == expected

    def test_a_diy_backend_without_tags_takes_the_stack_files(self, declared: dict[str, Declaration]) -> None:
        # pulumi/pulumi merges pulumi:tags into the stack's tags in pkg/backend/httpstate alone: on the
        # deploys' S3 backend the stack has none, and the committed prod file's are read instead.
        assert checks.declared_tags("prod") == {"owner": "platform-team", "environment": "prod"}
        assert reported("stack-tags", stack_args(declared["prod"], {})) == []

    def test_the_stack_files_tags_win_over_the_backends(self, declared: dict[str, Declaration]) -> None:
        assert reported("stack-tags", stack_args(declared["prod"], {"environment": "dev", "owner": "x"})) == []

    def test_a_teams_stack_reads_its_environments_tags_and_rules(self) -> None:
        assert checks.declared_tags("prod.payments") == checks.declared_tags("prod")
        assert environment({}, "urn:pulumi:prod.payments::vault-platform::pulumi:pulumi:Stack::x") == "prod"

    @pytest.mark.parametrize(("stack", "drop_audit", "expected"), [
        ("prod", False, []),
        ("prod", True, ["the stack declares 0 audit device(s); prod needs at least 2: Vault stops answering "
                        "requests when it cannot write to any audit device, so one failing device would stop the "
                        "service (vault:index/audit:Audit)"]),
        ("dev", False, []),
        ("dev", True, ["the stack declares 0 audit device(s); dev needs at least 1 (vault:index/audit:Audit)"]),
    ])
    def test_audit_device(self, declared: dict[str, Declaration], tags: dict[str, dict[str, str]], stack: str,
                          drop_audit: bool, expected: list[str]) -> None:
        args = stack_args(declared[stack], tags[stack])
        if drop_audit:
            args.resources = [r for r in args.resources if r.resource_type != "vault:index/audit:Audit"]
        assert reported("audit-device", args) == expected

    @pytest.mark.parametrize(("keep", "expected"), [
        (2, []),
        (1, ["the stack declares 1 audit device(s); staging needs at least 2: Vault stops answering requests when "
             "it cannot write to any audit device, so one failing device would stop the service "
             "(vault:index/audit:Audit)"]),
    ])
    def test_staging_needs_two_audit_devices(self, declared: dict[str, Declaration],
                                             tags: dict[str, dict[str, str]], keep: int,
                                             expected: list[str]) -> None:
        args = stack_args(declared["staging"], tags["staging"])
        audits = [r for r in args.resources if r.resource_type == "vault:index/audit:Audit"]
        assert len(audits) == 2
        args.resources = [r for r in args.resources if r not in audits[keep:]]
        assert reported("audit-device", args) == expected

    @pytest.mark.parametrize("stack", ["dev", "prod"])
    def test_audit_device_before_vault_is_configured(self, declared: dict[str, Declaration],
                                                     cluster_only: dict[str, Declaration],
                                                     tags: dict[str, dict[str, str]], stack: str) -> None:
        # The first `pulumi up` declares the cluster only: no Vault provider, so nothing to audit.
        assert not_applicable("audit-device", stack_args(cluster_only[stack], tags[stack])) == (
            "the stack declares no Vault provider (Vault is not configured yet): no Vault resource, nothing to audit")
        # With the Vault provider declared, a missing audit device is reported again.
        args = stack_args(declared[stack], tags[stack])
        args.resources = [r for r in args.resources if r.resource_type != "vault:index/audit:Audit"]
        assert not_applicable("audit-device", args) is None
        assert reported("audit-device", args) == [
            "the stack declares 0 audit device(s); dev needs at least 1 (vault:index/audit:Audit)" if stack == "dev"
            else "the stack declares 0 audit device(s); prod needs at least 2: Vault stops answering requests when "
                 "it cannot write to any audit device, so one failing device would stop the service "
                 "(vault:index/audit:Audit)"]


class TestSnapshotsAndAlerts:
    SNAPSHOTS = ("the stack takes no Raft snapshots; prod requires them: the Raft data holds every secret and transit "
                 "key, and Vault takes no snapshot by itself (no kubernetes:batch/v1:CronJob runs `vault operator "
                 "raft snapshot save`)")

    @pytest.mark.parametrize(("stack", "drop", "expected"), [
        ("prod", False, []),
        ("prod", True, [SNAPSHOTS]),
        ("dev", True, []),
    ])
    def test_raft_snapshots(self, declared: dict[str, Declaration], tags: dict[str, dict[str, str]], stack: str,
                            drop: bool, expected: list[str]) -> None:
        args = stack_args(declared[stack], tags[stack])
        if drop:
            args.resources = [r for r in args.resources if r.resource_type != "kubernetes:batch/v1:CronJob"]
        assert reported("raft-snapshots", args) == expected

    def test_a_cronjob_that_takes_no_snapshot_does_not_count(self, declared: dict[str, Declaration],
                                                             tags: dict[str, dict[str, str]]) -> None:
        args = copy.deepcopy(stack_args(declared["prod"], tags["prod"]))  # the session's declaration stays
        (job,) = [r for r in args.resources if r.resource_type == "kubernetes:batch/v1:CronJob"]
        for container in job.props["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"]:
            container["command"] = ["/bin/sh", "-c", "echo nothing"]
        assert reported("raft-snapshots", args) == [self.SNAPSHOTS]

    def test_snapshot_runs_may_not_overlap(self, declared: dict[str, Declaration],
                                           tags: dict[str, dict[str, str]]) -> None:
        args = copy.deepcopy(stack_args(declared["prod"], tags["prod"]))  # the session's declaration stays
        (job,) = [r for r in args.resources if r.resource_type == "kubernetes:batch/v1:CronJob"]
        job.props["spec"]["concurrencyPolicy"] = "Allow"
        assert reported("raft-snapshots", args) == [
            "the Raft snapshot CronJob vault-snapshots-cronjob may start a run while one is going: set "
            "spec.concurrencyPolicy to Forbid"]

    def test_snapshots_before_vault_is_configured(self, cluster_only: dict[str, Declaration],
                                                  tags: dict[str, dict[str, str]]) -> None:
        assert not_applicable("raft-snapshots", stack_args(cluster_only["prod"], tags["prod"])) == (
            "the stack declares no Vault provider (Vault is not configured yet): no Vault to take snapshots of")

    @pytest.mark.parametrize(("stack", "drop", "expected"), [
        ("staging", False, []),
        ("staging", True, ["the stack declares no alert rules; staging requires them: a sealed server or a failing "
                           "snapshot would otherwise be found by the users "
                           "(kubernetes:monitoring.coreos.com/v1:PrometheusRule)"]),
        ("dev", True, []),
    ])
    def test_alert_rules(self, declared: dict[str, Declaration], tags: dict[str, dict[str, str]], stack: str,
                         drop: bool, expected: list[str]) -> None:
        args = stack_args(declared[stack], tags[stack])
        if drop:
            args.resources = [r for r in args.resources
                              if r.resource_type != "kubernetes:monitoring.coreos.com/v1:PrometheusRule"]
        assert reported("alert-rules", args) == expected


def with_inputs(declaration: Declaration, resource: str, **inputs: Any) -> Declaration:
    """``declaration`` with the inputs of the resource named ``resource`` changed."""
    resources = tuple(dataclasses.replace(r, inputs={**r.inputs, **inputs}) if r.name == resource else r
                      for r in declaration.resources)
    return dataclasses.replace(declaration, resources=resources)


class TestDatabaseLeases:
    """A lease dies with the token that created it: the credentials an app's tokens may read are never
    renewed for longer than those tokens live (Vault's ACL semantics decide who may read them)."""

    ROLE = "vault-database-api-role"

    def test_every_declared_stack_passes(self, declared: dict[str, Declaration],
                                         tags: dict[str, dict[str, str]]) -> None:
        for stack, declaration in declared.items():
            assert reported("database-leases", stack_args(declaration, tags[stack])) == [], stack

    def test_a_role_outliving_the_app_token_is_refused(self, declared: dict[str, Declaration],
                                                       tags: dict[str, dict[str, str]]) -> None:
        longer = with_inputs(declared["prod"], self.ROLE, maxTtl=86400.0)
        assert reported("database-leases", stack_args(longer, tags["prod"])) == [
            "database/creds/api-role: maxTtl 1d outlives the tokens of application 'api-service' (tokenMaxTtl 4h): "
            "Vault revokes a lease when the token that created it expires, so its database users would be dropped "
            "after 4h; lower the database role's maxTtl or raise the auth role's tokenMaxTtl"]

    def test_tokens_that_live_as_long_pass(self, declared: dict[str, Declaration],
                                           tags: dict[str, dict[str, str]]) -> None:
        longer = with_inputs(declared["prod"], self.ROLE, maxTtl=86400.0)
        longer = with_inputs(longer, "vault-kubernetes-auth-api-service", tokenMaxTtl=86400.0)
        assert reported("database-leases", stack_args(longer, tags["prod"])) == []

    def test_a_role_no_token_may_read_is_not_concerned(self, declared: dict[str, Declaration],
                                                       tags: dict[str, dict[str, str]]) -> None:
        unread = with_inputs(declared["prod"], self.ROLE, maxTtl=86400.0, name="batch-role")
        assert reported("database-leases", stack_args(unread, tags["prod"])) == []

    def test_a_policy_that_does_not_parse_grants_nothing_here(self, declared: dict[str, Declaration],
                                                              tags: dict[str, dict[str, str]]) -> None:
        # acl-least-privilege reports the broken text; this policy only must not fail on it.
        broken = with_inputs(declared["prod"], self.ROLE, maxTtl=86400.0)
        broken = with_inputs(broken, "vault-policies-app-api-service", policy='path "x" {')
        assert reported("database-leases", stack_args(broken, tags["prod"])) == []


def test_every_policy_is_tested() -> None:
    tested = {case[0] for case in TestDeclaredResources.CASES.values()} | {
        "protect-stateful", "protect-configuration", "no-plaintext-secrets", "acl-least-privilege", "stack-tags",
        "audit-device", "raft-snapshots", "alert-rules", "database-leases"}
    assert {policy.name for policy in POLICIES} == tested
