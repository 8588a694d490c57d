"""What every valid stack declares, asserted for every resource of each kind: run on each committed
stack and on a copy of it with an application onboarded with every kind of access (KV secret,
dynamic and static database roles, transit key, certificate). Nothing here names an application,
a role or a count: the committed stacks change every week, and a valid change must keep this green.
Exact shapes are asserted on the test stacks under ``tests/stacks/``."""

from __future__ import annotations

import json

import pytest

from environment import EnvironmentSpec, load_policy_files
from environment.operations import SNAPSHOT_IDENTITY
from platformctl.adapters.engine import GENERATED
from platformctl.adapters.stackfile import PLACEHOLDER
from platformctl.core.declaration import Declaration, DeclaredResource, is_secret, masked, unwrap
from render.acl import app_policy
from render.annotations import injector_annotations
from tests.support import ANY_STACK, COMMITTED, ONBOARDED, any_stack, onboarded_app, spec_of_config
from vaultmodel import rules

RELEASE = "kubernetes:helm.sh/v3:Release"
MOUNT = "vault:index/mount:Mount"
AUTH_BACKEND = "vault:index/authBackend:AuthBackend"
ROLE = "vault:kubernetes/authBackendRole:AuthBackendRole"
POLICY = "vault:index/policy:Policy"
KV_SECRET = "vault:kv/secretV2:SecretV2"
CONNECTION = "vault:database/secretBackendConnection:SecretBackendConnection"
DB_ROLE = "vault:database/secretBackendRole:SecretBackendRole"
STATIC_ROLE = "vault:database/secretBackendStaticRole:SecretBackendStaticRole"
TRANSIT_KEY = "vault:transit/secretBackendKey:SecretBackendKey"
PKI_ROLE = "vault:pkiSecret/secretBackendRole:SecretBackendRole"
AUDIT = "vault:index/audit:Audit"
SNAPSHOTS = "vault-platform:snapshots:RaftSnapshots"
AUTOPILOT = "vault:index/raftAutopilot:RaftAutopilot"
# Which component declares every resource of a kind (but the snapshot job's role and policy: its own).
OWNER = {
    RELEASE: "vault-platform:cluster:VaultCluster",
    AUTH_BACKEND: "vault-platform:auth:KubernetesAuth",
    ROLE: "vault-platform:auth:KubernetesAuth",
    POLICY: "vault-platform:acl:AclPolicies",
    KV_SECRET: "vault-platform:kv:KvEngine",
    CONNECTION: "vault-platform:database:DatabaseEngine",
    DB_ROLE: "vault-platform:database:DatabaseEngine",
    STATIC_ROLE: "vault-platform:database:DatabaseEngine",
    TRANSIT_KEY: "vault-platform:transit:TransitEngine",
    PKI_ROLE: "vault-platform:pki:PkiEngine",
    AUDIT: "vault-platform:audit:AuditDevices",
    AUTOPILOT: "vault-platform:autopilot:Autopilot",
}
CLUSTER_STATEFUL = (RELEASE, "kubernetes:core/v1:Namespace")


@pytest.fixture(scope="session")
def any_specs() -> dict[str, EnvironmentSpec]:
    """The spec of each of :data:`ANY_STACK`."""
    return {name: spec_of_config(any_stack(name)) for name in ANY_STACK}


def parent_type(declaration: Declaration, resource: DeclaredResource) -> str:
    return next(r.type for r in declaration.resources if r.urn == resource.parent)


def test_every_committed_stack_is_covered_with_and_without_the_onboarded_app() -> None:
    assert COMMITTED
    assert sorted(ANY_STACK) == sorted([*COMMITTED, *(f"{stack}{ONBOARDED}" for stack in COMMITTED)])


@pytest.mark.parametrize("stack", ANY_STACK)
class TestEveryStack:
    def test_declares_without_a_problem(self, any_declared: dict[str, Declaration], stack: str) -> None:
        assert any_declared[stack].error is None

    def test_the_onboarded_copy_has_an_app_with_every_kind_of_access(
            self, any_specs: dict[str, EnvironmentSpec], stack: str) -> None:
        if not stack.endswith(ONBOARDED):
            return
        base = any_specs[stack.removesuffix(ONBOARDED)]
        spec = any_specs[stack]
        name = onboarded_app(base, any_stack(stack.removesuffix(ONBOARDED)).apps)
        (app,) = [app for app in spec.apps if app.name == name]
        assert len(spec.apps) == len(base.apps) + 1
        assert app.kv_paths
        assert app.transit
        assert (app.database_role is not None) is (app.static_database_role is not None) is (base.database is not None)
        assert (app.certificate is not None) is (base.pki is not None)

    def test_one_resource_a_name(self, any_declared: dict[str, Declaration], stack: str) -> None:
        """A URN names the type too, but the plan, its diff and the CLI's output show the name alone."""
        names = [r.name for r in any_declared[stack].resources]
        assert sorted(name for name in set(names) if names.count(name) > 1) == []

    def test_components_own_their_resources(self, any_declared: dict[str, Declaration], stack: str) -> None:
        declaration = any_declared[stack]
        owners = {r.name: parent_type(declaration, r) for r in declaration.resources if r.type in OWNER}
        assert owners == {r.name: _owner(r) for r in declaration.resources if r.type in OWNER}
        assert all(r.type.startswith("vault-platform:") for r in declaration.resources if not r.custom)
        names = {r.urn: r.name for r in declaration.resources}
        for child in declaration.resources:
            if child.parent and child.type.startswith(("kubernetes:", "vault:")):
                assert child.name.startswith(f"{names[child.parent]}-"), child.name

    def test_autopilot_keeps_a_quorum_of_the_replicas(self, any_declared: dict[str, Declaration],
                                                       any_specs: dict[str, EnvironmentSpec], stack: str) -> None:
        # Only servers beyond the StatefulSet's pods may lose their vote; Vault refuses cleanup below 3.
        # Declared for Raft storage only: always in a stack that deploys Vault, with the voters written
        # down when its Vault is external.
        spec = any_specs[stack]
        autopilot = spec.autopilot
        assert [(a.inputs["minQuorum"], a.inputs["cleanupDeadServers"]) for a in any_declared[stack].of_type(
            AUTOPILOT)] == ([] if autopilot is None else [(autopilot.min_quorum, autopilot.min_quorum >= 3)])
        if spec.cluster is not None:
            assert spec.cluster.autopilot.min_quorum == spec.cluster.replicas

    def test_explicit_providers(self, any_declared: dict[str, Declaration], any_specs: dict[str, EnvironmentSpec],
                                stack: str) -> None:
        declaration = any_declared[stack]
        assert [r.name for r in declaration.resources
                if r.custom and r.type.startswith(("kubernetes:", "vault:")) and not r.provider] == []
        (provider,) = declaration.of_type("pulumi:providers:vault")
        access = any_specs[stack].vault
        assert access is not None
        if access.jwt_login is not None:  # CI's OIDC token: the login token itself, no child token
            assert json.loads(provider.inputs["authLoginJwt"]) == {"role": "deploy", "mount": access.jwt_login.mount}
            assert (provider.inputs["skipChildToken"], "token" in provider.inputs) == ("true", False)
        else:
            assert provider.inputs["skipChildToken"] == "false"
            assert is_secret(provider.inputs["token"])

    def test_one_release_of_the_official_chart(self, any_declared: dict[str, Declaration],
                                               any_specs: dict[str, EnvironmentSpec], stack: str) -> None:
        cluster = any_specs[stack].cluster
        if cluster is None:  # its Vault is external
            assert any_declared[stack].of_type(RELEASE) == []
            return
        (release,) = any_declared[stack].of_type(RELEASE)
        assert (release.inputs["chart"], release.inputs["version"], release.inputs["namespace"]) == (
            "vault", cluster.chart_version, cluster.namespace)
        assert release.inputs["repositoryOpts"] == {"repo": "https://helm.releases.hashicorp.com"}
        assert release.inputs["values"]["server"]["ha"]["replicas"] == cluster.replicas

    def test_what_holds_state_is_protected(self, any_declared: dict[str, Declaration],
                                           any_specs: dict[str, EnvironmentSpec], stack: str) -> None:
        # The configuration layer's mounts, auth methods, audit devices, transit keys and CAs in every
        # tier (unless the stack states their removal); the namespace and the release in prod.
        spec = any_specs[stack]
        for resource in any_declared[stack].resources:
            path = rules.stateful_configuration_path(resource.type, unwrap(resource.inputs))
            if path is not None:
                assert resource.protect is not rules.removal_stated(path, spec.removals), resource.name
            else:
                assert resource.protect is (spec.tier == "prod" and resource.type in CLUSTER_STATEFUL), resource.name

    def test_one_auth_role_per_app_binding_its_own_account(self, any_declared: dict[str, Declaration],
                                                           any_specs: dict[str, EnvironmentSpec], stack: str) -> None:
        roles = {r.inputs["roleName"]: r.inputs for r in any_declared[stack].of_type(ROLE)}
        assert (roles.pop(SNAPSHOT_IDENTITY, None) is not None) == (any_specs[stack].snapshots is not None)
        assert {name: (role["boundServiceAccountNames"], role["boundServiceAccountNamespaces"],
                       role["tokenPolicies"], role["tokenTtl"], role["tokenMaxTtl"], role["audience"])
                for name, role in roles.items()} == {
            app.name: ([app.service_account], [app.namespace], [f"app-{app.name}", *app.policies],
                       app.token_ttl, app.token_max_ttl, app.audience)
            for app in any_specs[stack].apps}

    def test_policies_are_the_files_the_declared_and_one_per_app(
            self, any_declared: dict[str, Declaration], any_specs: dict[str, EnvironmentSpec], stack: str) -> None:
        spec = any_specs[stack]
        policies = {r.inputs["name"]: r.inputs["policy"] for r in any_declared[stack].of_type(POLICY)}
        assert sorted(policies) == sorted([*(d.name for d in load_policy_files()), *(p.name for p in spec.policies),
                                           *(f"app-{app.name}" for app in spec.apps),
                                           *([SNAPSHOT_IDENTITY] if spec.snapshots else [])])
        for app in spec.apps:
            assert policies[f"app-{app.name}"] == app_policy(app, spec).hcl

    def test_an_app_uses_exactly_the_transit_operations_it_declares(
            self, any_declared: dict[str, Declaration], any_specs: dict[str, EnvironmentSpec], stack: str) -> None:
        spec = any_specs[stack]
        policies = {r.inputs["name"]: r.inputs["policy"] for r in any_declared[stack].of_type(POLICY)}
        mount = spec.transit.mount if spec.transit else "transit"
        for app in spec.apps:
            granted = {line.split('"')[1] for line in policies[f"app-{app.name}"].splitlines()
                       if line.startswith(f'path "{mount}/')}
            assert granted == {f"{mount}/{op}/{grant.key}" for grant in app.transit for op in grant.operations}

    def test_kv_secrets_are_the_declared_ones_and_stay_secret(
            self, any_declared: dict[str, Declaration], any_specs: dict[str, EnvironmentSpec], stack: str) -> None:
        kv = any_specs[stack].kv
        secrets = {r.inputs["name"]: r.inputs for r in any_declared[stack].of_type(KV_SECRET)}
        assert sorted(secrets) == sorted(secret.path for secret in kv.secrets)
        for secret in kv.secrets:
            inputs = secrets[secret.path]
            assert inputs["mount"] == kv.mount
            assert is_secret(inputs["dataJson"])
            assert sorted(json.loads(unwrap(inputs["dataJson"]))) == sorted(key for key, _ in secret.values)

    def test_database_roles_run_on_a_connection_that_allows_them(
            self, any_declared: dict[str, Declaration], any_specs: dict[str, EnvironmentSpec], stack: str) -> None:
        database = any_specs[stack].database
        declaration = any_declared[stack]
        allowed = {c.inputs["name"]: set(c.inputs["allowedRoles"]) for c in declaration.of_type(CONNECTION)}
        roles = [*declaration.of_type(DB_ROLE), *declaration.of_type(STATIC_ROLE)]
        assert all(r.inputs["name"] in allowed[r.inputs["dbName"]] for r in roles)
        expected = [*(r.name for r in database.roles), *(r.name for r in database.static_roles)] if database else []
        assert sorted(r.inputs["name"] for r in roles) == sorted(expected)

    def test_transit_keys_are_the_declared_ones(self, any_declared: dict[str, Declaration],
                                                any_specs: dict[str, EnvironmentSpec], stack: str) -> None:
        spec = any_specs[stack]
        keys = {r.inputs["name"]: r.inputs for r in any_declared[stack].of_type(TRANSIT_KEY)}
        assert sorted(keys) == sorted(key.name for key in (spec.transit.keys if spec.transit else ()))
        if spec.tier == "prod":
            assert not any(key["exportable"] or key["deletionAllowed"] for key in keys.values())

    def test_annotations_are_a_stack_output_per_app(self, any_declared: dict[str, Declaration],
                                                    any_specs: dict[str, EnvironmentSpec], stack: str) -> None:
        spec = any_specs[stack]
        outputs = any_declared[stack].outputs
        for app in spec.apps:
            assert outputs[f"{app.name}-annotations"] == injector_annotations(app, spec)
            assert outputs[f"{app.name}-annotations"]["vault.hashicorp.com/role"] == app.name

    def test_no_secret_value_outside_a_secret(self, any_declared: dict[str, Declaration], stack: str) -> None:
        declaration = any_declared[stack]
        visible = json.dumps([masked(r.inputs) for r in declaration.resources] + [masked(declaration.outputs)])
        everything = json.dumps([unwrap(r.inputs) for r in declaration.resources])
        present = [value for value in (GENERATED, PLACEHOLDER) if value in everything]
        assert present  # every stack holds some secret: at least the provider's token
        assert [value for value in present if value in visible] == []


def _owner(resource: DeclaredResource) -> str:
    """The component expected to declare ``resource``."""
    if SNAPSHOT_IDENTITY in (resource.inputs.get("name"), resource.inputs.get("roleName")):
        return SNAPSHOTS
    return OWNER[resource.type]
