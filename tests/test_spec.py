"""The environment spec: what the committed stacks validate to, and every kind of bad input refused
with one message naming the stack, the config key, what is wrong and how to fix it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from environment import SpecError, StackRefused, load_spec
from environment.apps import PROJECT_ROOT
from platformctl.adapters.stackfile import read_stack
from tests.postgres.server import ServerTls
from tests.support import (
    API_SERVICE,
    COMMITTED,
    DELETE,
    STACKS,
    apply_edits,
    declare_stack,
    edited,
    refusal,
    spec_of,
    spec_of_config,
)
from vaultmodel.durations import format_duration, parse_duration

P = "vault-platform:"
APP = API_SERVICE
PROD = f"{APP}environments.prod."


class TestCommittedStacks:
    def test_prod_is_the_seed_example(self) -> None:
        spec = spec_of("prod")
        assert spec.tier == "prod"
        assert spec.protect is True
        assert spec.deployed.replicas == 5
        assert spec.deployed.chart_version == "0.34.1"
        (app,) = spec.apps
        assert (app.name, app.namespace, app.service_account, app.token_ttl) == (
            "api-service", "production", "api-service-sa", 3600)
        (policy,) = spec.policies
        assert policy.name == "api-secrets"
        assert [(r.path, r.capabilities) for r in policy.rules] == [
            ("secret/data/production/api-service", ("read",))]
        (secret,) = spec.kv.secrets
        assert secret.path == "production/api-service"
        assert [key for key, _ in secret.values] == ["api_key", "database_url"]
        assert spec.database is not None
        (connection,) = spec.database.connections
        assert (connection.name, connection.host, connection.port, connection.database, connection.admin_user) == (
            "postgres", "postgres.prod.internal", 5432, "app", "vault_admin")
        (role,) = spec.database.roles
        assert (role.name, role.default_ttl, role.max_ttl) == ("api-role", 3600, 14400)
        assert [(g.privileges, g.schema) for g in role.grants] == [(("SELECT", "INSERT", "UPDATE"), "public")]

    @pytest.mark.parametrize(("stack", "replicas", "tls", "injector"), [
        ("dev", 1, False, 1), ("staging", 3, True, 2), ("prod", 5, True, 3)])
    def test_sizes_per_environment(self, stack: str, replicas: int, tls: bool, injector: int) -> None:
        cluster = spec_of(stack).deployed
        assert (cluster.replicas, cluster.tls.enabled, cluster.injector_replicas) == (replicas, tls, injector)

    def test_dev_brings_its_own_database_and_protects_nothing(self) -> None:
        spec = spec_of("dev")
        assert spec.protect is False
        assert spec.database is not None
        assert spec.database.connections[0].in_cluster is True
        assert spec.database.connections[0].admin_password_key is None

    def test_the_login_reaches_the_spec(self) -> None:
        access = spec_of("prod", {"vault:address": "https://vault.prod.internal:8200"}).vault
        assert access is not None
        assert (access.address, access.token_key) == ("https://vault.prod.internal:8200", "vault:token")


CA = "vault:caCertFile"
CA_PUBLIC = f"{P}vaultCaPublic"


class TestVaultCa:
    """``vault:caCertFile``: the CA that verifies Vault's certificate, a PEM file of the repository, for
    the provider, ``vault-login`` and ``rollout``; required outside dev for an https address."""

    @pytest.mark.parametrize("stack", COMMITTED)
    def test_each_committed_https_stack_outside_dev_names_a_ca_of_the_repository(self, stack: str) -> None:
        access = spec_of_config(read_stack(stack)).vault
        assert access is not None
        if access.address.startswith("https://") and stack != "dev":
            assert access.ca_cert_file == f"stacks/ca/{stack}.pem"
            assert (PROJECT_ROOT / access.ca_cert_file).read_text().count("-----BEGIN CERTIFICATE-----") >= 1

    def test_the_provider_gets_the_file_as_written(self) -> None:
        (provider,) = declare_stack("prod").of_type("pulumi:providers:vault")
        assert provider.inputs["caCertFile"] == "tests/stacks/ca/vault-ca.pem"

    @pytest.mark.parametrize("stack", ["staging", "prod"])
    def test_an_https_address_without_a_ca_is_refused_outside_dev(self, stack: str) -> None:
        error = refusal(stack, {CA: DELETE}, CA)
        assert error.problem == ("is not set: Vault's certificate comes from the private platform-ca, which the "
                                 "provider, vault-login and rollout would look for in the machine's trust store")
        assert error.fix == (f"commit the CA's PEM as stacks/ca/{stack}.pem and run `pulumi config set "
                             f"vault:caCertFile stacks/ca/{stack}.pem` (README, \"Vault's CA\"); or set "
                             "vault-platform:vaultCaPublic to true if Vault's certificate chains to a public CA")

    @pytest.mark.parametrize(("stack", "changes"), [
        ("prod", {CA: DELETE, CA_PUBLIC: True}),  # the stack states the CA is public
        ("prod", {CA: DELETE, "vault:address": "http://127.0.0.1:8200"}),  # a loopback test Vault, no TLS
        ("staging", {CA: DELETE, "vault:address": "http://127.0.0.1:18200"}),
        ("dev", {"vault:address": "https://vault.dev.internal:8200"}),
        ("prod", {"vault:address": "http://127.0.0.1:8200"}),  # a CA with a plain address is harmless
    ])
    def test_accepted_without_a_ca_or_with_one_it_does_not_need(self, stack: str, changes: dict[str, Any]) -> None:
        access = spec_of(stack, changes).vault
        assert access is not None
        assert access.ca_cert_file == ("tests/stacks/ca/vault-ca.pem" if stack != "dev" and CA not in changes else None)

    def test_an_absolute_path_is_taken_as_it_is(self, tmp_path: Path) -> None:
        (tmp_path / "ca.pem").write_text((PROJECT_ROOT / "tests/stacks/ca/vault-ca.pem").read_text())
        access = spec_of("prod", {CA: str(tmp_path / "ca.pem")}).vault
        assert access is not None
        assert access.ca_cert_file == str(tmp_path / "ca.pem")

    def test_a_server_certificate_is_not_a_ca(self, tmp_path: Path) -> None:
        (tmp_path / "server.pem").write_text(ServerTls.throwaway("vault.prod.internal").certificate_pem)
        error = refusal("prod", {CA: str(tmp_path / "server.pem")}, CA)
        assert error.problem.endswith("holds no CA certificate (a server certificate cannot sign another)")

    @pytest.mark.parametrize(("changes", "key", "problem"), [
        ({CA: "stacks/ca/prod-eu.pem"}, CA, "'stacks/ca/prod-eu.pem' is not a file (a relative path starts where "
                                            "Pulumi.yaml is)"),
        ({CA: "docs/postgres-admin.md"}, CA, "'docs/postgres-admin.md' is not PEM certificates (it holds text that "
                                             "is not ASCII)"),  # its `v-…` users
        ({CA: "Pulumi.yaml"}, CA, "'Pulumi.yaml' is not PEM certificates (no start line: cadata does not contain a "
                                  "certificate"),  # OpenSSL's words, then its source line
        ({CA: 3}, CA, "expected a file path, got 3"),
        ({CA_PUBLIC: True}, CA_PUBLIC, "is true, but vault:caCertFile names a CA file"),
        ({CA: DELETE, CA_PUBLIC: "yes"}, CA_PUBLIC, "'yes' is not true or false"),
    ])
    def test_refused(self, changes: dict[str, Any], key: str, problem: str) -> None:
        assert refusal("prod", changes, key).problem.startswith(problem)

    def test_true_as_the_cli_hands_it_over_is_accepted(self) -> None:
        # The CLI passes a top-level scalar as text (PULUMI_CONFIG: {"vault-platform:vaultCaPublic": "true"}).
        assert spec_of("prod", {CA: DELETE, CA_PUBLIC: "true"}).vault is not None


class TestCiLoginOverTheNetwork:
    """CI's JWT login sends the job's OIDC token and gets a Vault token back: never in clear across a
    network. A token login (bootstrap, break-glass, a loopback test Vault) is the person's choice."""

    @pytest.mark.parametrize(("stack", "address"), [
        ("dev", "http://vault.dev.internal:8200"), ("dev", "http://10.0.4.7:8200"),
        ("prod", "http://vault.prod.internal:8200"), ("dev", "http://localhost.example:8200")])
    def test_a_jwt_login_over_plain_http_to_another_machine_is_refused(self, stack: str, address: str) -> None:
        error = refusal(stack, {"vault:token": DELETE, "vault:address": address}, "vault:address")
        assert error.problem == (f"{address!r} is plain http to another machine: the CI job's login would send its "
                                 "OIDC token, and get its Vault token back, in clear")
        assert error.fix == ("serve Vault with TLS (cluster.tls) and write its https address, with vault:caCertFile "
                             "(README, \"Vault's CA\"); plain http only to a loopback address (a port-forward)")

    @pytest.mark.parametrize(("stack", "changes"), [
        ("dev", {"vault:token": DELETE, "vault:address": "http://127.0.0.1:8200"}),
        ("dev", {"vault:token": DELETE, "vault:address": "http://localhost:8200"}),
        ("prod", {"vault:token": DELETE, "vault:address": "http://[::1]:8200"}),
        ("prod", {"vault:token": DELETE}),  # https, with the stack's CA
        ("dev", {"vault:address": "http://vault.dev.internal:8200"}),  # a token: a bootstrap or break-glass run
    ])
    def test_accepted(self, stack: str, changes: dict[str, Any]) -> None:
        access = spec_of(stack, changes).vault
        assert access is not None
        assert (access.jwt_login is not None) is ("vault:token" in changes)


class TestCredentialLifetimes:
    """A lease dies with the token that created it: a database role's maxTtl never outlives the tokens
    of the applications that take credentials from it."""

    ROLE = f"{P}database.roles[api-role].maxTtl"
    AT = f"{P}database.roles[0].maxTtl"

    def test_the_default_role_lives_as_long_as_the_default_token(self) -> None:
        role = spec_of("prod", {f"{P}database.roles[0].maxTtl": DELETE}).database
        assert role is not None
        assert role.roles[0].max_ttl == spec_of("prod").apps[0].token_max_ttl == 4 * 3600

    def test_a_role_that_outlives_the_app_token_is_refused_with_the_fix(self) -> None:
        problem = refusal("prod", {f"{P}database.roles[0].maxTtl": "24h"}, self.AT)
        assert str(problem) == (
            "stack 'prod', config key 'vault-platform:database.roles[api-role].maxTtl': 1d outlives the tokens "
            "of application 'api-service' (tokenMaxTtl 4h): Vault revokes a lease when the token that created it "
            "expires, so its database users would be dropped after 4h. Fix: set it to 4h or less, or raise "
            "tokenMaxTtl of application 'api-service' to 1d (at most 1d)")
        assert problem.edits == ((self.ROLE, "4h"),)

    def test_the_fix_applies_also_when_the_default_ttl_is_longer(self) -> None:
        changes = {f"{P}database.roles[0].maxTtl": "24h", f"{P}database.roles[0].defaultTtl": "8h"}
        problem = refusal("prod", changes, self.AT)
        assert problem.edits == ((f"{P}database.roles[api-role].defaultTtl", "4h"), (self.ROLE, "4h"))
        fixed = apply_edits("prod", changes, problem.edits)
        assert spec_of_config(fixed).database is not None

    @pytest.mark.parametrize(("role_max", "token_max"), [("4h", "4h"), ("2h", "4h"), ("24h", "24h")])
    def test_a_role_within_the_token_is_accepted(self, role_max: str, token_max: str) -> None:
        spec_of("prod", {f"{P}database.roles[0].maxTtl": role_max, f"{APP}tokenMaxTtl": token_max})

    def test_every_app_of_a_shared_role_counts(self) -> None:
        second = {"namespace": "billing", "serviceAccount": "billing-sa", "databaseRole": "api-role",
                  "tokenMaxTtl": "2h", "tokenTtl": "1h", "environments": {"prod": None}}
        problem = refusal("prod", {"apps/billing/billing.yaml:": second}, self.AT)
        assert problem.problem.startswith("4h outlives the tokens of application 'billing' (tokenMaxTtl 2h)")


class TestRemovals:
    """``removals`` states, by Vault path, the stateful configuration a stack means to delete."""

    def test_stated_paths_reach_the_spec_once_each(self) -> None:
        removals = ["sys/mounts/transit", "sys/auth/kubernetes", "sys/audit/stdout", "transit/keys/payments",
                    "sys/mounts/transit"]
        spec = spec_of("prod", {f"{P}removals": removals})
        assert spec.removals == ("sys/mounts/transit", "sys/auth/kubernetes", "sys/audit/stdout",
                                 "transit/keys/payments")
        assert not spec.keeps("sys/mounts/transit")
        assert not spec.keeps("transit/keys/other")  # a key goes with its mount
        assert spec.keeps("sys/mounts/secret")

    def test_nothing_stated_keeps_everything(self) -> None:
        spec = spec_of("dev")
        assert spec.removals == ()
        assert spec.keeps("sys/mounts/secret")
        assert spec.keeps("sys/audit/file")

    @pytest.mark.parametrize("path", ["secret", "sys/mounts", "sys/policy/app-x", "/sys/mounts/secret",
                                      "sys/mounts/secret/", "pki/root", "sys/mounts/*"])
    def test_anything_else_is_refused(self, path: str) -> None:
        problem = refusal("prod", {f"{P}removals": ["sys/mounts/transit", path]}, f"{P}removals[1]")
        assert problem.problem == f"{path!r} names no mount, auth method, audit device or transit key"
        assert problem.fix == ("write sys/mounts/<path>, sys/auth/<path>, sys/audit/<path> or "
                               "<transit mount>/keys/<name> (a PKI CA goes with its mount)")


class TestClusterOnly:
    """Only a stack that says so declares the cluster layer alone; a lost login is refused."""

    @pytest.mark.parametrize("stated", [True, "true"])  # the CLI hands a top-level scalar over as text
    def test_stated_for_a_first_up(self, stated: object) -> None:
        assert spec_of("prod", {"vault:token": DELETE, f"{P}clusterOnly": stated}).vault is None
        assert spec_of("prod", configured=False).vault is None

    @pytest.mark.parametrize("stated", [False, "false"])
    def test_stated_false_is_the_default(self, stated: object) -> None:
        assert spec_of("prod", {f"{P}clusterOnly": stated}).vault is not None

    @pytest.mark.parametrize("stack", STACKS)
    def test_a_missing_login_is_refused_with_the_fix(self, stack: str) -> None:
        with pytest.raises(SpecError) as refused:
            spec_of(stack, {"vault:token": DELETE, f"{P}githubActions": DELETE})
        assert str(refused.value) == (
            f"stack {stack!r}, config key 'vault:token': is not set, and no other Vault login (githubActions "
            "with vault:address) is configured: the "
            "program would declare only the cluster layer, and `pulumi up` would delete the auth methods, "
            "policies, secrets engines and audit devices it declared before. Fix: run `pulumi config set "
            "--secret vault:token <token>` (README, 'Bringing up a new environment'); only for a new "
            "environment's first `up`, before Vault is initialized, set vault-platform:clusterOnly to true "
            "instead")

    def test_cluster_only_with_a_login_is_refused(self) -> None:
        with pytest.raises(SpecError) as refused:
            spec_of("prod", {f"{P}clusterOnly": True})
        assert refused.value.key == f"{P}clusterOnly"
        assert refused.value.problem == (
            "is true, but vault:token is set: a stack that logs in to Vault declares the configuration layer too")
        assert refused.value.fix == (
            "remove vault-platform:clusterOnly once Vault is initialized, or remove vault:token")

    @pytest.mark.parametrize("stated", [True, "yes"])
    def test_the_fix_applies(self, stated: object) -> None:
        changes = {f"{P}clusterOnly": stated}
        fixed = apply_edits("prod", changes, refusal("prod", changes, f"{P}clusterOnly").edits)
        assert spec_of_config(fixed).vault is not None

    @pytest.mark.parametrize("stated", ["yes", 1, {"enabled": True}])
    def test_anything_but_true_or_false_is_refused(self, stated: object) -> None:
        with pytest.raises(SpecError) as refused:
            spec_of("prod", {"vault:token": DELETE, f"{P}clusterOnly": stated})
        assert refused.value.key == f"{P}clusterOnly"
        assert refused.value.problem == f"{stated!r} is not true or false"


class TestDurations:
    @pytest.mark.parametrize(("text", "seconds"), [
        ("90s", 90), ("30m", 1800), ("1h", 3600), ("1h30m", 5400), ("7d", 604800), ("3600", 3600), (0, 0)])
    def test_parses(self, text: Any, seconds: int) -> None:
        assert parse_duration(text) == seconds

    @pytest.mark.parametrize("text", ["1x", "h", "-5", "1.5h", "", True, -1, "1h 30m"])
    def test_refuses(self, text: Any) -> None:
        with pytest.raises(ValueError, match=r"is not a duration|is negative"):
            parse_duration(text)

    @pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (3600, "1h"), (5400, "1h30m"), (86400, "1d")])
    def test_formats(self, seconds: int, text: str) -> None:
        assert format_duration(seconds) == text


# Each case: the stack, the change, then the exact key the message must name and words it must hold.
BAD_INPUT: dict[str, tuple[str, dict[str, Any], str, str]] = {
    "unknown top-level key": (
        "prod", {f"{P}clustr": {"replicas": 3}}, f"{P}clustr", "did you mean 'vault-platform:cluster'?"),
    "unknown nested key": (
        "prod", {f"{P}cluster.replica": 5}, f"{P}cluster.replica", "did you mean 'replicas'?"),
    "unknown key in an app": (
        "prod", {f"{APP}tokenTTL": "1h"}, f"{APP}tokenTTL", "did you mean 'tokenTtl'?"),
    "even replicas": (
        "prod", {f"{P}cluster.replicas": 4}, f"{P}cluster.replicas", "4 replicas is even"),
    "even replicas in dev": (
        "dev", {f"{P}cluster.replicas": 2}, f"{P}cluster.replicas", "2 replicas is even"),
    "one replica in staging": (
        "staging", {f"{P}cluster.replicas": 1}, f"{P}cluster.replicas", "cannot survive a node failure in staging"),
    "TLS off in prod": (
        "prod", {f"{P}cluster.tls.enabled": False}, f"{P}cluster.tls.enabled", "only be turned off in dev"),
    "one injector in prod": (
        "prod", {f"{P}cluster.injector.replicas": 1}, f"{P}cluster.injector.replicas", "single point of failure"),
    "TTL that does not parse": (
        "prod", {f"{P}database.roles[0].defaultTtl": "1 hour"}, f"{P}database.roles[api-role].defaultTtl",
        "'1 hour' is not a duration"),
    "default TTL above max TTL": (
        "prod", {f"{P}database.roles[0].defaultTtl": "48h"}, f"{P}database.roles[api-role].defaultTtl",
        "48h is above maxTtl (4h)"),
    "token TTL above token max TTL": (
        "prod", {f"{APP}tokenTtl": "8h"}, f"{APP}tokenTtl", "8h is above tokenMaxTtl (4h)"),
    "role bound to every namespace": (
        "prod", {f"{PROD}namespace": "*"}, f"{PROD}namespace", "binds every namespace ('*')"),
    "role bound to every service account": (
        "prod", {f"{APP}serviceAccount": "api-*"}, f"{APP}serviceAccount",
        "binds every serviceAccount ('*')"),
    "app reads an undeclared KV path": (
        "prod", {f"{PROD}kvPaths": ["production/billing"]}, f"{PROD}kvPaths[0]",
        "KV path 'production/billing' is not declared"),
    "app uses an undeclared database role": (
        "prod", {f"{APP}databaseRole": "billing-role"}, f"{APP}databaseRole",
        "database role 'billing-role' is not declared"),
    "app attaches an undeclared policy": (
        "prod", {f"{APP}policies": ["billing-secrets"]}, f"{APP}policies[0]",
        "policy 'billing-secrets' is not declared"),
    "role on an undeclared connection": (
        "prod", {f"{P}database.roles[0].connection": "billing"}, f"{P}database.roles[api-role].connection",
        "connection 'billing' is not declared"),
    "policy on an undeclared KV path": (
        "prod", {f"{P}policies[0].rules[0].path": "secret/data/production/billing"},
        f"{P}policies[api-secrets].rules[secret/data/production/billing].path",
        "refers to KV path 'production/billing', which is not declared"),
    "policy on an undeclared database role": (
        "prod", {f"{P}policies[0].rules[0].path": "database/creds/billing-role"},
        f"{P}policies[api-secrets].rules[database/creds/billing-role].path", "refers to database role 'billing-role'"),
    "unknown capability": (
        "prod", {f"{P}policies[0].rules[0].capabilities": ["read", "write"]},
        f"{P}policies[api-secrets].rules[secret/data/production/api-service].capabilities[1]",
        "'write' is not a Vault capability"),
    "policy named like a generated one": (
        "prod", {f"{P}policies[0].name": "app-api-service"}, f"{P}policies[app-api-service].name", "is reserved"),
    "policy named like a hand-written one": (
        "prod", {f"{P}policies[0].name": "vault-iac"}, f"{P}policies[vault-iac].name", "is reserved"),
    "plaintext value in place of a secret": (
        "prod", {f"{P}database.connections[0].adminPassword": "hunter2"},
        f"{P}database.connections[postgres].adminPassword",
        "holds a plaintext value where a secret is required"),
    "chart version range": (
        "prod", {f"{P}cluster.chartVersion": "^0.34"}, f"{P}cluster.chartVersion", "'^0.34' is not an exact version"),
    "chart version latest": (
        "prod", {f"{P}cluster.chartVersion": "latest"}, f"{P}cluster.chartVersion", "'latest' is not an exact version"),
    "namespace with capitals": (
        "prod", {f"{PROD}namespace": "Production"},
        f"{PROD}namespace", "'Production' is not a valid name"),
    "app name with an underscore": (
        "prod", {"apps/payments/api_service.yaml:": {"environments": {"prod": None}}},
        "apps/payments/api_service.yaml:", "'api_service' is not a valid application name"),
    "policy name with a space": (
        "prod", {f"{P}policies[0].name": "api secrets"}, f"{P}policies[0].name", "'api secrets' is not a valid name"),
    "KV secret name with a slash": (
        "prod", {f"{P}kv.secrets": {"api/service": {"data": {"k": {"random": {"length": 32}}}}}},
        f"{P}kv.secrets.api/service", "'api/service' is not a valid name"),
    "in-cluster database outside dev": (
        "prod", {f"{P}database.connections[0].inCluster": True}, f"{P}database.connections[postgres].inCluster",
        "for dev only"),
    "check-and-set off in prod": (
        "prod", {f"{P}kv.casRequired": False}, f"{P}kv.casRequired", "must use check-and-set"),
    "replicas as a string": (
        "prod", {f"{P}cluster.replicas": "five"}, f"{P}cluster.replicas", "expected a whole number"),
    "missing chart version": (
        "prod", {f"{P}cluster.chartVersion": DELETE}, f"{P}cluster.chartVersion", "is required but not set"),
    "prod opting into dev's rules": (
        "prod", {f"{P}tier": "dev"}, f"{P}tier", "stack 'prod' always has the prod rules, not 'dev'"),
    "token audience not set": (
        "prod", {f"{P}kubernetesAuth.audience": DELETE}, f"{P}kubernetesAuth.audience", "is required but not set"),
    "empty token audience": (
        "prod", {f"{P}kubernetesAuth.audience": ""}, f"{P}kubernetesAuth.audience", "'' is not a valid name"),
    "engine mounted on a reserved path": (
        "prod", {f"{P}transit.mount": "sys"}, f"{P}transit.mount", "'sys' is reserved by Vault"),
    "two engines on one mount": (
        "prod", {f"{P}transit.mount": "secret"}, f"{P}transit.mount",
        "mount 'secret' is already vault-platform:kv.mount"),
    "host for the in-cluster database": (
        "dev", {f"{P}database.connections[0].host": "db.example.internal"}, f"{P}database.connections[postgres].host",
        "reached at its own Service"),
    "two in-cluster databases": (
        "dev", {f"{P}database.connections[1]": {"name": "reports", "inCluster": True, "database": "reports",
                                                "adminUser": "vault_admin"}},
        f"{P}database.connections[reports].inCluster", "would collide with the first"),
    "short generated secret": (
        "dev", {f"{P}kv.secrets.api-service.data.api_key.random.length": 8},
        f"{P}kv.secrets.api-service.data.api_key.random.length", "below the minimum of 16"),
    "token TTL above the cap": (
        "prod", {f"{APP}tokenTtl": "6h", f"{APP}tokenMaxTtl": "8h"}, f"{APP}tokenTtl",
        "tokenTtl 6h is above the cap of 4h"),
    "token max TTL above the cap": (
        "prod", {f"{APP}tokenMaxTtl": "48h"},
        f"{APP}tokenMaxTtl", "tokenMaxTtl 48h is above the cap of 1d"),
    "database max TTL above the cap": (  # its app's tokens live as long, so that only the cap binds
        "prod", {f"{P}database.roles[0].maxTtl": "720h", f"{APP}tokenMaxTtl": "24h"},
        f"{P}database.roles[api-role].maxTtl",
        "maxTtl 720h is above the cap of 1d"),
    "database default TTL of 0": (
        "prod", {f"{P}database.roles[0].defaultTtl": 0}, f"{P}database.roles[api-role].defaultTtl",
        "0 would fall back to the mount's default of 32 days"),
    "policy granting everything": (
        "prod", {f"{P}policies[0].rules[0].path": "*"}, f"{P}policies[api-secrets].rules[*].path",
        "'*': it reaches a whole mount or all of its secret material"),
    "policy granting every KV secret": (
        "prod", {f"{P}policies[0].rules[0].path": "secret/data/*"},
        f"{P}policies[api-secrets].rules[secret/data/*].path",
        "'secret/data/*': it reaches a whole mount"),
    "policy granting every database credential": (
        "prod", {f"{P}policies[0].rules[0].path": "database/creds/*"},
        f"{P}policies[api-secrets].rules[database/creds/*].path",
        "'database/creds/*': it reaches a whole mount"),
    "policy with sudo": (
        "prod", {f"{P}policies[0].rules[0].capabilities": ["read", "sudo"]},
        f"{P}policies[api-secrets].rules[secret/data/production/api-service].capabilities[1]",
        "sudo is for the platform admin policy only"),
    "policy on an undeclared static role": (
        "prod", {f"{P}policies[0].rules[0].path": "database/static-creds/reporting"},
        f"{P}policies[api-secrets].rules[database/static-creds/reporting].path",
        "refers to static database role 'reporting'"),
    "policy on an undeclared transit key": (
        "prod", {f"{P}policies[0].rules[0].path": "transit/encrypt/billing"},
        f"{P}policies[api-secrets].rules[transit/encrypt/billing].path",
        "refers to transit key 'billing', which is not declared"),
    "auth method on Vault's token path": (
        "prod", {f"{P}kubernetesAuth.path": "token"}, f"{P}kubernetesAuth.path", "auth/token is Vault's own"),
    "in-cluster database on another port": (
        "dev", {f"{P}database.connections[0].port": 5433}, f"{P}database.connections[postgres].port",
        "the in-cluster PostgreSQL listens on 5432"),
    "port out of range": (
        "prod", {f"{P}database.connections[0].port": 70000}, f"{P}database.connections[postgres].port",
        "70000 is above the maximum of 65535"),
    "static role on the admin user": (
        "prod", {f"{P}database.staticRoles": [{"name": "admin", "connection": "postgres", "username": "vault_admin"}]},
        f"{P}database.staticRoles[admin].username", "is the connection's admin user"),
    "Vault in the dev database's namespace": (
        "dev", {f"{P}cluster.namespace": "postgres"}, f"{P}cluster.namespace",
        "'postgres' is the in-cluster PostgreSQL's namespace"),
    "app audience that is not one": (
        "prod", {f"{APP}audience": "bad audience !"}, f"{APP}audience",
        "'bad audience !' is not a valid name"),
    "certificate name that is not a host name": (
        "prod", {f"{P}cluster.tls.extraDnsNames": ["vault prod"]}, f"{P}cluster.tls.extraDnsNames[0]",
        "'vault prod' is not a valid name"),
    "CPU request above its limit": (
        "prod", {f"{P}cluster.resources.requests.cpu": "2500m"}, f"{P}cluster.resources.requests.cpu",
        "the request 2500m is above the limit 2"),
    "memory request above its limit": (
        "staging", {f"{P}cluster.injector.resources.requests.memory": "1Gi"},
        f"{P}cluster.injector.resources.requests.memory", "the request 1Gi is above the limit 256Mi"),
    "auto-unseal role that is not an ARN": (
        "prod", {f"{P}cluster.autoUnseal.roleArn": "vault-prod-unseal"}, f"{P}cluster.autoUnseal.roleArn",
        "is not an IAM role ARN"),
}


class TestBadInput:
    @pytest.mark.parametrize(("stack", "changes", "key", "words"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
    def test_refused_with_one_clear_message(self, stack: str, changes: dict[str, Any], key: str, words: str) -> None:
        with pytest.raises(StackRefused) as refused:
            spec_of(stack, changes)
        (problem,) = [problem for problem in refused.value.problems if problem.key == key]
        assert problem.stack == stack
        assert words in problem.problem + problem.fix
        path, _, inner = key.partition(":")
        where = (f"config key {key!r}" if not key.startswith("apps/") else
                 f"{path}, line {problem.line}, key {inner!r}" if inner else path)
        message = f"{where}: {problem.problem}. Fix: {problem.fix}"
        assert message in str(refused.value)
        assert str(refused.value).startswith(f"stack {stack!r}")

    def test_secret_set_in_plaintext(self) -> None:
        with pytest.raises(SpecError) as refused:
            spec_of("prod", {f"{P}postgresAdminPassword": "hunter2"},
                    secret_keys={"vault:token", f"{P}apiServiceDatabaseUrl", f"{P}apiServiceApiKey"})
        assert refused.value.key == f"{P}postgresAdminPassword"
        assert "plaintext" in refused.value.problem
        assert "pulumi config set --secret vault-platform:postgresAdminPassword" in refused.value.fix

    def test_vault_token_in_plaintext(self) -> None:
        with pytest.raises(SpecError) as refused:
            spec_of("prod", secret_keys={f"{P}postgresAdminPassword", f"{P}apiServiceDatabaseUrl",
                                         f"{P}apiServiceApiKey", f"{P}oidcClientSecret"})
        assert refused.value.key == "vault:token"
        assert "plaintext" in refused.value.problem

    def test_referenced_secret_not_set(self) -> None:
        with pytest.raises(SpecError) as refused:
            spec_of("prod", {f"{P}apiServiceApiKey": DELETE})
        assert refused.value.key == f"{P}apiServiceApiKey"
        assert refused.value.problem == "is not set, but a secret is required here"

    def test_vault_address_required_with_a_token(self) -> None:
        with pytest.raises(SpecError) as refused:
            spec_of("prod", {"vault:address": DELETE})
        assert refused.value.key == "vault:address"

    def test_a_stack_not_named_after_a_tier_says_its_tier(self) -> None:
        staging = edited("staging")
        config = dict(staging.config)
        assert load_spec("staging-eu", {**config, f"{P}tier": "staging"}, staging.secret_keys,
                         apps=staging.apps).tier == "staging"
        with pytest.raises(SpecError) as refused:
            load_spec("staging-eu", {**config, f"{P}tier": "production"}, staging.secret_keys, apps=staging.apps)
        assert refused.value.key == f"{P}tier"
        assert refused.value.problem == "'production' is not one of dev, staging, prod"

    def test_a_request_equal_to_its_limit_is_fine(self) -> None:
        resources = spec_of("prod", {f"{P}cluster.resources.requests.memory": "4096Mi"}).deployed.server_resources
        assert (resources.memory_request, resources.memory_limit) == ("4096Mi", "4Gi")

    def test_memory_in_kibibytes_is_read(self) -> None:
        # 65536Ki is the 64Mi floor: a quantity in Ki is compared by its value like any other.
        resources = spec_of("prod", {f"{P}cluster.resources.requests.memory": "65536Ki"}).deployed.server_resources
        assert resources.memory_request == "65536Ki"
        with pytest.raises(SpecError, match="65535Ki is below the 64Mi a container here needs to start"):
            spec_of("prod", {f"{P}cluster.resources.requests.memory": "65535Ki"})

    @pytest.mark.parametrize(("quantity", "refusal"), [
        ("50G", None), ("1.5Ti", None), ("1Gi", None), ("16Ti", None), ("1048576Ki", None),
        ("1048575Ki", "is outside the 1Gi to 16Ti"), ("500m", "is outside the 1Gi to 16Ti"),
        ("50", "is outside the 1Gi to 16Ti"),
        ("1023Mi", "is outside the 1Gi to 16Ti"), ("17Ti", "is outside the 1Gi to 16Ti"), ("0", "is outside"),
        ("10 Gi", "is not a valid name"), ("10GB", "is not a valid name")])
    def test_storage_quantities(self, quantity: str, refusal: str | None) -> None:
        changes = {f"{P}cluster.storage.data": quantity}
        if refusal is None:
            assert spec_of("prod", changes).deployed.data_storage == quantity
        else:
            with pytest.raises(SpecError, match=refusal):
                spec_of("prod", changes)

    @pytest.mark.parametrize("key_id", ["alias/vault-prod-unseal", "mrk-1234abcd12ab34cd56ef1234567890ab",
                                        "1234abcd-12ab-34cd-56ef-1234567890ab",
                                        "arn:aws:kms:eu-west-1:222222222222:key/mrk-1234abcd12ab34cd56ef1234567890ab"])
    def test_kms_key_ids(self, key_id: str) -> None:
        assert spec_of("prod", {f"{P}cluster.autoUnseal.kmsKeyId": key_id}).deployed.auto_unseal is not None

    def test_a_role_needs_grants_or_statements(self) -> None:
        with pytest.raises(SpecError) as refused:
            spec_of("prod", {f"{P}database.roles[0].grants": DELETE})
        assert refused.value.key == f"{P}database.roles[api-role]"
        assert "exactly one of grants and creationStatements" in refused.value.problem
