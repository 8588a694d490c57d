"""Stack config -> :class:`EnvironmentSpec`, refusing bad input before any resource is declared: the
orchestration of the sections' loaders (each section of the config is read by a module of its own) and
the checks across sections."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import replace
from typing import Any

from . import external, identity, operations, sections
from ._reader import (
    K8S_LABEL,
    REMOVE,
    Node,
    SpecError,
    attempt,
    collected,
    collecting,
    follows,
    report,
    stop_if_refused,
)
from .app_keys import load_apps
from .apps import Apps, Origins, read_app_nodes
from .cluster import load_cluster
from .database import DEV_POSTGRES_NAMESPACE, load_database, refuse_database_roles
from .kv import DEFAULT_PATH_PREFIX, load_kv
from .model import Cluster, EnvironmentSpec, ExternalVault, Kv, Tier
from .policies import check_generated_policies, data_plane, load_policies
from .stack_keys import (
    PROJECT,
    SecretRefs,
    load_removals,
    load_tier,
    project_config,
    refuse_foreign_namespaces,
    stack_parts,
)
from .vault_access import load_cluster_only, load_vault_access

# Paths Vault itself owns: a secrets engine cannot be mounted there.
RESERVED_MOUNTS = ("sys", "auth", "identity", "cubbyhole")


def load_spec(stack: str, config: Mapping[str, Any], secret_keys: Set[str],
              reserved_policies: Iterable[str] = (), *, apps: Apps, ci_role: str | None = None,
              ci_token_file: str | None = None) -> EnvironmentSpec:
    """Validates a stack's whole config and its applications, and returns its spec, or raises one
    :class:`StackRefused` (a :class:`SpecError`) listing every problem found.

    ``config`` maps full keys (``vault-platform:cluster``) to decoded values; ``secret_keys`` holds
    the keys stored as secrets; ``reserved_policies`` are the names of the hand-written policies;
    ``apps`` are the project's application files (:func:`environment.apps.read_apps`);
    ``ci_role`` is the JWT role a CI job logs in with (``deploy`` when unset); ``ci_token_file`` the file
    holding the Vault token that job already logged in for, if any.
    """
    environment, team = stack_parts(stack)
    with collected(apps.line_of):
        spec = _load(environment, config, secret_keys, reserved_policies, apps, ci_role, ci_token_file or None)
    return _team_spec(spec, stack, team) if team is not None else spec


def _team_spec(spec: EnvironmentSpec, stack: str, team: str) -> EnvironmentSpec:
    """A team's stack (``prod.payments``): its environment's spec, from a verbatim copy of the
    environment's stack file (``platformctl team-stacks``), declaring that team's applications alone.
    A team without applications there is accepted: its stack then deletes what it declared before."""
    if not spec.team_stacks:
        raise SpecError(stack, f"{PROJECT}:teamStacks", f"{stack!r} is a team's stack, but {spec.stack} "
                        "declares its applications in its own stack",
                        f"set {PROJECT}:teamStacks: true in Pulumi.{spec.stack}.yaml, or run the stack {spec.stack}")
    if not follows(team, K8S_LABEL):
        raise SpecError(stack, "stack name", f"{team!r} is not a team's folder name (apps/<team>/)",
                        f"name the stack {spec.stack}.<team>, after a folder under apps/")
    return replace(spec, team=team)


def _load(stack: str, config: Mapping[str, Any], secret_keys: Set[str], reserved_policies: Iterable[str],
          app_files: Apps, ci_role: str | None, ci_token_file: str | None) -> EnvironmentSpec:
    refuse_foreign_namespaces(stack, config)
    root = project_config(stack, config)
    secrets = SecretRefs(stack, config, secret_keys)
    tier = load_tier(stack, root)
    app_nodes = read_app_nodes(root, app_files)
    origins = Origins()
    cluster, external_vault = _vault_servers(root, tier, secrets)
    auth_path, audience = attempt(lambda: identity.load_kubernetes_auth(root.child("kubernetesAuth")),
                                  broken="kubernetesAuth") or ("kubernetes", "")
    # A section that fails declares no mount: references to mounts are then not checked.
    kv = attempt(lambda: load_kv(root.child("kv"), tier, secrets, app_nodes, origins), broken=("kv", "mounts"))
    database = attempt(lambda: load_database(root.child("database"), tier, secrets, app_nodes, origins),
                       broken=("database", "mounts")) if (
        root.has("database")) else None
    root.raw("database")
    if not root.has("database"):
        refuse_database_roles(app_nodes)
    transit = attempt(lambda: sections.load_transit(root.child("transit"), tier),
                      broken=("transit", "mounts")) if (
        root.has("transit")) else None
    root.raw("transit")
    pki = attempt(lambda: sections.load_pki(root.child("pki"), tier), broken=("pki", "mounts")) if (
        root.has("pki")) else None
    root.raw("pki")
    kv_or_none = kv or Kv(mount="secret", max_versions=1, cas_required=False, delete_version_after=0,
                          path_prefix=DEFAULT_PATH_PREFIX[tier], secrets=())
    plane = data_plane(kv_or_none, database, transit, pki)
    policies = attempt(lambda: load_policies(root, kv_or_none, database, transit, plane, reserved_policies),
                       broken="policies") or ()
    declared_policies = {policy.name: policy for policy in policies}
    apps = attempt(lambda: load_apps(app_nodes, kv_or_none, database, plane, declared_policies, audience, transit, pki,
                                     origins)) or ()
    github = attempt(lambda: identity.load_github_actions(root.child("githubActions"), stack, declared_policies),
                     broken="githubActions") if root.has("githubActions") else None
    root.raw("githubActions")
    people = attempt(lambda: identity.load_people(root.child("oidc"), declared_policies, secrets.reference),
                     broken="oidc") if root.has("oidc") else None
    root.raw("oidc")
    for method, method_path in (("githubActions", identity.GITHUB_ACTIONS_PATH), ("oidc", identity.PEOPLE_PATH)):
        if root.has(method) and auth_path == method_path:
            report(root.error("kubernetesAuth.path", f"auth/{auth_path} is the {method} login's",
                              "choose another path, e.g. kubernetes", edit="kubernetes"))
    audit = attempt(lambda: sections.load_audit(root.child("audit"), tier, sections.mounts_of(
        [kv_or_none.mount], [database.mount] if database else [], [transit.mount] if transit else [],
        [ca.mount for ca in (pki.root, pki.intermediate) if ca is not None] if pki else []),
        external=root.has("externalVault")))
    with collecting():
        _check_mounts(root, [("kv.mount", kv_or_none.mount)]
                      + ([("database.mount", database.mount)] if database else [])
                      + ([("transit.mount", transit.mount)] if transit else [])
                      + ([(f"pki.{ca_key}.mount", ca.mount) for ca_key, ca in (("root", pki.root),
                                                                                ("intermediate", pki.intermediate))
                          if ca is not None] if pki else []))
    if database is not None and cluster is not None and any(c.in_cluster for c in database.connections) and (
            cluster.namespace == DEV_POSTGRES_NAMESPACE):
        report(root.error("cluster.namespace", f"{DEV_POSTGRES_NAMESPACE!r} is the in-cluster PostgreSQL's "
                          "namespace", "keep Vault in a namespace of its own, e.g. vault", edit="vault"))
    if root.has("externalVault"):
        external.refuse_in_cluster_database(root, database)
        snapshots, monitoring = external.load_external_operations(root, tier, external_vault), None
    else:
        snapshots = attempt(lambda: operations.load_snapshots(root.child("snapshots"), tier))
        monitoring = attempt(lambda: operations.load_monitoring(root.child("monitoring"), tier))
    secrets.refuse_unknown(root, [node.app.values for node in app_nodes])
    vault = attempt(lambda: load_vault_access(stack, config, secret_keys, cluster_only=load_cluster_only(root),
                                              github=github if root.has("githubActions") else None, ci_role=ci_role,
                                              ci_token_file=ci_token_file, tier=tier,
                                              ca_public=root.flag("vaultCaPublic"),
                                              external=root.has("externalVault")))
    removals = attempt(lambda: load_removals(root)) or ()
    team_stacks = attempt(lambda: root.flag("teamStacks")) or False
    stop_if_refused()
    # A section that failed was reported, and stop_if_refused ended the load.
    assert (cluster is None) != (external_vault is None)
    assert kv is not None
    assert audit is not None
    spec = EnvironmentSpec(
        stack=stack, tier=tier, cluster=cluster, kubernetes_auth_path=auth_path, kv=kv,
        database=database, vault=vault, policies=policies, apps=apps, audit=audit, transit=transit, pki=pki,
        snapshots=snapshots, monitoring=monitoring, kubernetes_auth_audience=audience,
        github_actions=github, people=people, removals=removals, external=external_vault,
        team_stacks=team_stacks,
    )
    check_generated_policies({node.app.file.name: node for node in app_nodes}, spec, plane)
    return spec


def _vault_servers(root: Node, tier: Tier, secrets: SecretRefs) -> tuple[Cluster | None, ExternalVault | None]:
    """The Vault this stack deploys (``cluster``), or the one it only configures (``externalVault``):
    exactly one of the two, each ``None`` when refused."""
    if root.has("cluster") and root.has("externalVault"):
        report(root.error("externalVault", "is set together with vault-platform:cluster: a stack either deploys "
                          "its Vault or configures one it does not deploy",
                          "remove vault-platform:cluster when the Vault runs elsewhere, or remove "
                          "vault-platform:externalVault when this stack deploys it"))
        root.raw("cluster")
        return None, None
    if root.has("externalVault"):
        root.raw("cluster")
        if attempt(lambda: load_cluster_only(root)):
            report(root.error("clusterOnly", "is true, but the stack's Vault is external "
                              "(vault-platform:externalVault): there is no cluster layer to declare first, "
                              "and its operator initialized it", "remove it, and set the Vault login "
                              "(vault:address, with githubActions or vault:token)", edit=REMOVE))
        return None, attempt(lambda: external.load_external_vault(
            root.child("externalVault"), tier, secrets.reference), broken="externalVault")
    if not root.has("cluster"):
        report(root.error("cluster", "is not set: the stack says neither which Vault it deploys nor which one "
                          "it configures", "declare vault-platform:cluster (the Helm release this stack deploys), "
                          "or vault-platform:externalVault for a Vault that runs elsewhere (README, 'A Vault "
                          "this stack does not deploy')"))
        return None, None
    return attempt(lambda: load_cluster(root.child("cluster"), tier)), None


def _check_mounts(root: Node, mounts: list[tuple[str, str]]) -> None:
    """Each secrets engine needs a mount path of its own, outside the paths Vault reserves."""
    seen: dict[str, str] = {}
    for key, path in mounts:
        if path in RESERVED_MOUNTS:
            raise root.error(key, f"{path!r} is reserved by Vault", "choose another mount path")
        if path in seen:
            raise root.error(key, f"mount {path!r} is already {root.path(seen[path])}",
                             "give each secrets engine its own mount path")
        seen[path] = key
