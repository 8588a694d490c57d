"""Each test stack (``tests/stacks/``) as a whole and every component, run by the real program under
Pulumi's mock engine: the resources and the exact settings that matter. What must hold for the
committed stacks is asserted, kind by kind, in ``test_any_stack``."""

from __future__ import annotations

import json

import pytest

from platformctl.adapters.stackfile import PLACEHOLDER
from platformctl.core.declaration import Declaration, DeclaredResource, is_secret, unwrap
from render.sql import ROOT_ROTATION_STATEMENTS
from tests.support import STACKS, declare_stack

RELEASE = "kubernetes:helm.sh/v3:Release"
MOUNT = "vault:index/mount:Mount"
AUTH_BACKEND = "vault:index/authBackend:AuthBackend"
ROLE = "vault:kubernetes/authBackendRole:AuthBackendRole"
POLICY = "vault:index/policy:Policy"
KV_CONFIG = "vault:kv/secretBackendV2:SecretBackendV2"
KV_SECRET = "vault:kv/secretV2:SecretV2"
CONNECTION = "vault:database/secretBackendConnection:SecretBackendConnection"
DB_ROLE = "vault:database/secretBackendRole:SecretBackendRole"


def one(declaration: Declaration, type_token: str) -> DeclaredResource:
    (resource,) = declaration.of_type(type_token)
    return resource


class TestProviders:
    def test_the_vault_provider(self, declared: dict[str, Declaration]) -> None:
        provider = one(declared["prod"], "pulumi:providers:vault")
        assert provider.inputs["address"] == "https://127.0.0.1:8200"
        assert (provider.inputs["skipChildToken"], provider.inputs["maxLeaseTtlSeconds"]) == ("false", "3600")
        assert is_secret(provider.inputs["token"])


class TestCluster:
    @pytest.mark.parametrize(("stack", "replicas"), [("dev", 1), ("staging", 3), ("prod", 5)])
    def test_release_of_the_official_chart(self, declared: dict[str, Declaration], stack: str,
                                           replicas: int) -> None:
        release = one(declared[stack], RELEASE)
        assert (release.inputs["chart"], release.inputs["version"], release.inputs["name"]) == (
            "vault", "0.34.1", "vault")
        assert release.inputs["repositoryOpts"] == {"repo": "https://helm.releases.hashicorp.com"}
        assert release.inputs["namespace"] == "vault"
        assert release.inputs["values"]["server"]["ha"]["replicas"] == replicas
        assert release.inputs["atomic"] is False

    def test_cert_manager_certificate_for_tls_stacks(self, declared: dict[str, Declaration]) -> None:
        certificate = one(declared["prod"], "kubernetes:cert-manager.io/v1:Certificate")
        assert certificate.inputs["spec"]["secretName"] == "vault-tls"
        assert certificate.inputs["spec"]["issuerRef"] == {"kind": "ClusterIssuer", "name": "platform-ca"}
        assert "*.vault-internal" in certificate.inputs["spec"]["dnsNames"]
        assert declared["dev"].of_type("kubernetes:cert-manager.io/v1:Certificate") == []

    def test_the_certificate_covers_the_address_ci_uses(self) -> None:
        declaration = declare_stack("prod", {"vault-platform:cluster.tls.extraDnsNames": ["vault.prod.internal"]})
        certificate = one(declaration, "kubernetes:cert-manager.io/v1:Certificate")
        assert certificate.inputs["spec"]["dnsNames"][-1] == "vault.prod.internal"


class TestOrdering:
    """The Vault configuration waits for the release and the audit devices: tests/test_ordering.py."""

    def test_the_dev_connection_waits_for_the_dev_database(self, declared: dict[str, Declaration]) -> None:
        dev = declared["dev"]
        assert dev.named("vault-postgres-postgres-deployment").urn in dev.named("vault-database-postgres").dependencies

    def test_the_cluster_layer_waits_for_nothing(self, declared: dict[str, Declaration]) -> None:
        assert declared["prod"].named("vault-cluster-namespace").dependencies == ()


class TestProtection:
    STATEFUL = (RELEASE, MOUNT, AUTH_BACKEND, "kubernetes:core/v1:Namespace")

    def test_prod_protects_the_release_and_the_mounts(self, declared: dict[str, Declaration]) -> None:
        prod = declared["prod"]
        stateful = [r for r in prod.resources if r.type in self.STATEFUL]
        assert {r.name for r in stateful} >= {"vault-cluster-release", "vault-kv-mount", "vault-database-mount",
                                              "vault-kubernetes-auth-backend"}
        assert all(r.protect for r in stateful)

    @pytest.mark.parametrize("stack", ["dev", "staging"])
    def test_other_stacks_protect_only_the_configuration_that_holds_state(
            self, declared: dict[str, Declaration], stack: str) -> None:
        assert {r.name for r in declared[stack].resources if r.protect} == {
            "vault-kv-mount", "vault-database-mount", "vault-transit-mount", "vault-pki-root-mount",
            "vault-pki-int-mount", "vault-kubernetes-auth-backend", "vault-audit-file", "vault-audit-stdout",
            "vault-transit-payments-card-data", "vault-transit-payments-receipts", "vault-pki-root-cert",
            "vault-pki-int-csr", "vault-pki-int-signed", "vault-pki-int-set-signed", "vault-github-actions-backend",
            *(["vault-people-backend"] if stack == "staging" else [])}

    def test_a_stated_removal_is_declared_unprotected(self) -> None:
        removals = ["sys/mounts/transit", "sys/audit/stdout", "sys/mounts/pki_int"]
        prod = declare_stack("prod", {"vault-platform:removals": removals})
        stated = {"vault-transit-mount", "vault-transit-payments-card-data", "vault-transit-payments-receipts",
                  "vault-audit-stdout", "vault-pki-int-mount", "vault-pki-int-csr", "vault-pki-int-set-signed"}
        assert {r.name for r in prod.resources if not r.protect} >= stated
        for kept in ("vault-kv-mount", "vault-audit-file", "vault-pki-root-cert", "vault-pki-int-signed",
                     "vault-cluster-release"):
            assert prod.named(kept).protect, kept

    def test_one_transit_key(self) -> None:
        prod = declare_stack("prod", {"vault-platform:removals": ["transit/keys/payments-receipts"]})
        assert not prod.named("vault-transit-payments-receipts").protect
        assert prod.named("vault-transit-payments-card-data").protect
        assert prod.named("vault-transit-mount").protect


class TestKubernetesAuth:
    def test_backend_and_config(self, declared: dict[str, Declaration]) -> None:
        prod = declared["prod"]
        assert one(prod, AUTH_BACKEND).inputs["type"] == "kubernetes"
        assert one(prod, AUTH_BACKEND).inputs["path"] == "kubernetes"
        config = one(prod, "vault:kubernetes/authBackendConfig:AuthBackendConfig")
        assert config.inputs["kubernetesHost"] == "https://kubernetes.default.svc:443"
        assert config.inputs["disableLocalCaJwt"] is False

    def test_role_binds_exactly_one_service_account(self, declared: dict[str, Declaration]) -> None:
        role = declared["prod"].named("vault-kubernetes-auth-api-service")
        assert role.inputs["roleName"] == "api-service"
        assert role.inputs["boundServiceAccountNames"] == ["api-service-sa"]
        assert role.inputs["boundServiceAccountNamespaces"] == ["production"]
        assert role.inputs["tokenPolicies"] == ["app-api-service", "api-secrets"]
        assert (role.inputs["tokenTtl"], role.inputs["tokenMaxTtl"]) == (3600, 14400)
        assert role.inputs["audience"] == "https://kubernetes.default.svc"


class TestPolicies:
    def test_hand_written_declared_and_generated(self, declared: dict[str, Declaration]) -> None:
        names = sorted(r.inputs["name"] for r in declared["prod"].of_type(POLICY))
        assert names == ["api-secrets", "app-api-service", "operations-readonly", "platform-admin", "vault-iac",
                         "vault-preview", "vault-snapshot"]


class TestKv:
    @pytest.mark.parametrize(("stack", "cas", "versions"), [("dev", False, 5), ("prod", True, 20)])
    def test_kv_v2_mount(self, declared: dict[str, Declaration], stack: str, cas: bool, versions: int) -> None:
        mount = next(r for r in declared[stack].of_type(MOUNT) if r.inputs["type"] == "kv")
        assert (mount.inputs["path"], mount.inputs["options"]) == ("secret", {"version": "2"})
        config = one(declared[stack], KV_CONFIG)
        assert (config.inputs["casRequired"], config.inputs["maxVersions"]) == (cas, versions)
        assert config.inputs["deleteVersionAfter"] == 0

    def test_static_secret_is_a_secret_from_stack_secrets(self, declared: dict[str, Declaration]) -> None:
        secret = one(declared["prod"], KV_SECRET)
        assert (secret.inputs["mount"], secret.inputs["name"]) == ("secret", "production/api-service")
        assert is_secret(secret.inputs["dataJson"])
        assert json.loads(unwrap(secret.inputs["dataJson"])) == {"api_key": PLACEHOLDER, "database_url": PLACEHOLDER}
        # Never read back: no CI role reads a value, and a pull request's `preview --refresh` works with the
        # read-only preview role (tests/e2e runs it against a real Vault).
        assert secret.inputs["disableRead"] is True

    # Vault's KV v2 reads the check-and-set version only from the write's `options.cas`
    # (vault-plugin-secrets-kv path_data.go, validateCheckAndSetOption); the provider writes its
    # `cas` input beside `options`, where Vault ignores it (terraform-provider-vault
    # resource_kv_secret_v2.go, kvSecretV2Write; issues 1727 and 2472).
    @pytest.mark.parametrize(("changes", "options"), [
        ({}, {"cas": "0"}),
        ({"vault-platform:kv.secrets.api-service.casVersion": 3}, {"cas": "3"}),
    ])
    def test_check_and_set_goes_where_vault_reads_it(self, changes: dict[str, object],
                                                     options: dict[str, str]) -> None:
        secret = one(declare_stack("prod", changes), KV_SECRET)
        assert secret.inputs["options"] == options
        assert "cas" not in secret.inputs

    @pytest.mark.parametrize("stack", ["dev", "staging"])
    def test_no_check_and_set_where_the_mount_does_not_require_it(self, declared: dict[str, Declaration],
                                                                  stack: str) -> None:
        secret = one(declared[stack], KV_SECRET)
        assert "options" not in secret.inputs
        assert "cas" not in secret.inputs

    def test_dev_generates_its_values(self, declared: dict[str, Declaration]) -> None:
        passwords = declared["dev"].of_type("random:index/randomPassword:RandomPassword")
        assert {(p.name, p.inputs["length"]) for p in passwords} >= {
            ("vault-kv-api-service-api_key", 40), ("vault-kv-api-service-database_url", 32)}
        assert all(p.inputs["special"] is False for p in passwords)
        assert is_secret(one(declared["dev"], KV_SECRET).inputs["dataJson"])


class TestDatabase:
    def test_connection(self, declared: dict[str, Declaration]) -> None:
        connection = one(declared["prod"], CONNECTION)
        assert connection.inputs["name"] == "postgres"
        assert connection.inputs["allowedRoles"] == ["api-role"]
        assert connection.inputs["verifyConnection"] is True
        assert connection.inputs["rootRotationStatements"] == list(ROOT_ROTATION_STATEMENTS)
        assert is_secret(connection.inputs["postgresql"]["passwordWo"])
        postgresql = unwrap(connection.inputs["postgresql"])
        assert postgresql["connectionUrl"] == (
            "postgresql://{{username}}:{{password}}@postgres.prod.internal:5432/app?sslmode=verify-full")
        assert postgresql["username"] == "vault_admin"
        assert postgresql["passwordAuthentication"] == "scram-sha-256"

    @pytest.mark.parametrize("stack", STACKS)
    def test_dynamic_role(self, declared: dict[str, Declaration], stack: str) -> None:
        role = one(declared[stack], DB_ROLE)
        assert (role.inputs["name"], role.inputs["dbName"]) == ("api-role", "postgres")
        assert (role.inputs["defaultTtl"], role.inputs["maxTtl"]) == (3600, 14400)
        assert role.inputs["creationStatements"] == [
            "SELECT vault_api.create_user('{{name}}', '{{password}}', '{{expiration}}', "
            """'[{"schema":"public","privileges":["SELECT","INSERT","UPDATE"]}]');""",
        ]
        assert role.inputs["revocationStatements"] == ["SELECT vault_api.drop_user('{{name}}');"]
        assert role.inputs["renewStatements"] == ["SELECT vault_api.renew_user('{{name}}', '{{expiration}}');"]

    def test_dev_database_runs_in_the_cluster_with_a_generated_password(self, declared: dict[str, Declaration]) -> None:
        dev = declared["dev"]
        deployment = one(dev, "kubernetes:apps/v1:Deployment")
        container = deployment.inputs["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "postgres:15.10-bookworm"
        assert {"name": "POSTGRES_DB", "value": "app"} in container["env"]
        postgresql = unwrap(one(dev, CONNECTION).inputs["postgresql"])
        assert postgresql["connectionUrl"].endswith("@postgres.postgres.svc:5432/app?sslmode=disable")
        credentials = one(dev, "kubernetes:core/v1:Secret")
        assert is_secret(credentials.inputs["stringData"])
        assert 'CREATE ROLE "vault_admin" WITH LOGIN NOCREATEROLE' in unwrap(credentials.inputs["stringData"])[
            "10-vault-admin.sql"]


class TestOutputs:
    def test_annotations_are_a_stack_output_per_app(self, declared: dict[str, Declaration]) -> None:
        outputs = declared["prod"].outputs
        assert outputs["api-service-annotations"]["vault.hashicorp.com/role"] == "api-service"
        assert outputs["vaultAddress"] == "https://vault.vault.svc:8200"
        assert "nextSteps" not in outputs


class TestBootstrap:
    def test_without_a_token_only_the_cluster_layer(self) -> None:
        declaration = declare_stack("prod", configured=False)
        types = {r.type for r in declaration.resources}
        assert RELEASE in types
        assert not any(t.startswith("vault:") or t == "pulumi:providers:vault" for t in types)
        assert declaration.outputs["nextSteps"].startswith("Vault is not configured yet")
        assert declaration.warnings == (declaration.outputs["nextSteps"],)


class TestRefusal:
    def test_bad_input_declares_nothing(self) -> None:
        declaration = declare_stack("prod", {"vault-platform:cluster.replicas": 2})
        assert declaration.resources == ()
        assert declaration.error == (
            "stack 'prod', config key 'vault-platform:cluster.replicas': 2 replicas is even; Raft needs an odd "
            "number to keep a majority through a failure. Fix: use 3 or 5")
