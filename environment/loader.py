"""Stack config -> :class:`EnvironmentSpec`, refusing bad input before any resource is declared."""

from __future__ import annotations

import difflib
import fnmatch
import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping, Set
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from vaultmodel import rules
from vaultmodel.durations import DAY, HOUR, format_duration

from . import external, identity, operations, sections
from ._reader import (
    AUDIENCE,
    AWS_REGION,
    CONFIG_KEY,
    HOST,
    K8S_LABEL,
    K8S_SUBDOMAIN,
    KV_PATH,
    QUANTITY,
    REMOVE,
    SQL_IDENTIFIER,
    VAULT_NAME,
    Node,
    SpecError,
    attempt,
    ca_pem,
    ca_problem,
    check_min_ttl,
    check_name,
    check_ttl_cap,
    check_ttl_order,
    collected,
    collecting,
    declared,
    follows,
    name_of,
    refuse_duplicate,
    report,
    stop_if_refused,
)
from .apps import AppNode, Apps
from .model import (
    AdminSetup,
    App,
    AutoUnseal,
    Cluster,
    Connection,
    Database,
    DatabaseRole,
    EnvironmentSpec,
    ExternalVault,
    GithubActions,
    Grant,
    JwtLogin,
    Kv,
    KvSecret,
    Pki,
    Policy,
    PolicyRule,
    RaftAutopilot,
    Resources,
    SecretValue,
    Snapshots,
    StaticRole,
    Tier,
    Tls,
    Transit,
    VaultAccess,
)
from .policies import APP_POLICY_PREFIX, app_policy_name, app_policy_rules
from .statements import creation_problem

PROJECT = "vault-platform"
TIERS: tuple[Tier, ...] = ("dev", "staging", "prod")
CAPABILITIES = ("create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe", "recover")
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
ADMIN_SETUPS = ("functions", "createrole")
# The NOLOGIN role that owns the functions setup's SECURITY DEFINER functions (render/admin_setup.py).
FUNCTIONS_OWNER = "vault_api_owner"
FUNCTIONS_SCHEMA = "vault_api"
# Roles Vault must never be handed: the usual bootstrap superuser.
SUPERUSER_NAMES = ("postgres",)

DEV_POSTGRES_NAMESPACE = "postgres"
# Paths Vault itself owns: a secrets engine cannot be mounted there.
RESERVED_MOUNTS = ("sys", "auth", "identity", "cubbyhole")
RESERVED_AUTH_PATHS = ("token",)
DEV_POSTGRES_PORT = 5432
DEFAULT_TOKEN_MAX_TTL = 4 * HOUR
DEFAULT_PATH_PREFIX: dict[Tier, str] = {"dev": "development", "staging": "staging", "prod": "production"}
# Namespaces a stack's config keys may live in: the project's, its providers' (each provider reads
# its own: vault:address, aws:region, ...) and Pulumi's (pulumi:tags, pulumi:disable-default-providers).
KNOWN_NAMESPACES = (PROJECT, "pulumi", "vault", "kubernetes", "random", "aws")
_STRUCTURED_KEYS = ("tier", "clusterOnly", "vaultCaPublic", "teamStacks", "removals", "cluster", "externalVault",
                    "kubernetesAuth", "kv", "database", "policies", "apps", "audit", "transit", "pki", "snapshots",
                    "monitoring", "githubActions", "oidc")
LOGIN_KEYS = ("vault:token",)
"""Config keys that each configure how ``pulumi up`` logs in to Vault; a stack with none of them (and
no ``githubActions`` login with a ``vault:address``) declares only the cluster layer, which it must say
(``clusterOnly``)."""
CI_ROLE_VARIABLE = "VAULT_PLATFORM_CI_ROLE"
"""Environment variable in which a workflow names the role its job logs in with (deploy, preview)."""
TOKEN_FILE_VARIABLE = "TERRAFORM_VAULT_TOKEN_FILENAME"
"""Environment variable naming the file that holds the CI job's Vault token: the Vault provider's own
for its token-file login (terraform-provider-vault, internal/consts/consts.go ``EnvVarTokenFilename``)."""
PROJECT_ROOT = Path(__file__).resolve().parents[1]
"""Where ``Pulumi.yaml`` is: the Pulumi CLI runs the program and its providers there, so a relative
``vault:caCertFile`` names a file of the repository (``stacks/ca/<stack>.pem``)."""


def project_file(path: str) -> Path:
    """``path`` as the program and the Vault provider open it: relative to :data:`PROJECT_ROOT`."""
    return PROJECT_ROOT / path


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
    environment, team_stack, team = stack.partition(".")
    with collected(apps.line_of):
        spec = _load(environment, config, secret_keys, reserved_policies, apps, ci_role, ci_token_file or None)
    return _team_spec(spec, stack, team) if team_stack else spec


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
    _refuse_foreign_namespaces(stack, config)
    root = _project_root(stack, config)
    secrets = _SecretRefs(stack, config, secret_keys)
    tier = _tier(stack, root)
    app_nodes = _app_nodes(root, app_files)
    origins = _Origins()
    cluster, external_vault = _vault_servers(root, tier, secrets)
    auth_path, audience = attempt(lambda: _kubernetes_auth(root.child("kubernetesAuth")),
                                  broken="kubernetesAuth") or ("kubernetes", "")
    # A section that fails declares no mount: references to mounts are then not checked.
    kv = attempt(lambda: _kv(root.child("kv"), tier, secrets, app_nodes, origins), broken=("kv", "mounts"))
    database = attempt(lambda: _database(root.child("database"), tier, secrets, app_nodes, origins),
                       broken=("database", "mounts")) if (
        root.has("database")) else None
    root.raw("database")
    if not root.has("database"):
        _no_database(app_nodes)
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
    policies = attempt(lambda: _policies(root, kv_or_none, database, transit, plane, reserved_policies),
                       broken="policies") or ()
    apps = attempt(lambda: _apps(app_nodes, kv_or_none, database, policies, audience, transit, pki, origins)) or ()
    declared_policies = {policy.name: policy for policy in policies}
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
        _refuse_in_cluster_database(root, database)
        snapshots, monitoring = _external_operations(root, tier, external_vault), None
    else:
        snapshots = attempt(lambda: operations.load_snapshots(root.child("snapshots"), tier))
        monitoring = attempt(lambda: operations.load_monitoring(root.child("monitoring"), tier))
    secrets.refuse_unknown(root, [node.app.values for node in app_nodes])
    vault = attempt(lambda: _vault_access(stack, config, secret_keys, cluster_only=_cluster_only(root),
                                          github=github if root.has("githubActions") else None, ci_role=ci_role,
                                          ci_token_file=ci_token_file, tier=tier,
                                          ca_public=root.flag("vaultCaPublic"),
                                          external=root.has("externalVault")))
    removals = attempt(lambda: _removals(root)) or ()
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
    _check_generated_policies({node.app.file.name: node for node in app_nodes}, spec, plane)
    return spec


def _check_generated_policies(nodes: Mapping[str, AppNode], spec: EnvironmentSpec, plane: rules.DataPlane) -> None:
    """Each application's generated policy reaches only the data plane, by the rule declared ones follow."""
    for app in spec.apps:
        for rule in app_policy_rules(app, spec):
            refusal = rules.data_plane_refusal(app_policy_name(app), rule.path, rule.capabilities, plane)
            if refusal is not None:
                report(nodes[app.name].error(None, f"application {app.name!r}: {refusal.problem}", refusal.fix))
    stop_if_refused()


APPS_MOVED = ("move each entry to apps/<team>/<name>.yaml (the team that owns it: its folder; the name: the "
              "file's), its keys for this stack under 'environments: {<stack>: ...}', then remove this key "
              "(README, \"Applications\")")


def _app_nodes(root: Node, app_files: Apps) -> list[AppNode]:
    """The stack's applications, read from their files; the files' own problems, and applications
    still written in the stack config, are refused."""
    for problem in app_files.problems:
        report(SpecError(root.stack, problem.key, problem.problem, problem.fix, line=problem.line))
    if root.has("apps"):
        report(root.error("apps", "applications are no longer read from the stack config: the Pulumi CLI hands "
                          "the whole config to the program in one environment variable, which Linux caps at "
                          "128 KiB (about 200 applications)", APPS_MOVED))
    root.raw("apps")
    return [app.node(root.stack) for app in app_files.for_stack(root.stack)]


class _Origins:
    """Where each declared KV secret and database role was written (``kv.secrets:<path>`` ->
    ``vault-platform:kv.secrets.<name>``), and which application's file declared it, if one did."""

    def __init__(self) -> None:
        self.key: dict[str, str] = {}
        self.app: dict[str, AppNode] = {}

    def add(self, item: str, key: str, app: AppNode | None) -> None:
        self.key[item] = key
        if app is not None:
            self.app[item] = app

    def described(self, item: str) -> str:
        """Where ``item`` is declared, for a message."""
        app = self.app.get(item)
        return f"in {app.app.file.path}" if app is not None else f"at {self.key[item]}"


def _own_name(app: AppNode, where: Node, key: str, name: str) -> None:
    """What an application's file declares carries the application's name: its owner shows in every
    path, and one team cannot take a name another team's application will want."""
    own = app.app.file.name
    if name != own and not name.startswith(f"{own}-"):
        raise where.error(key, f"{name!r} is not named after application {own!r}",
                          f"name it {own!r} or {own}-<purpose>: what an application's file declares carries its "
                          "name")


def _no_database(app_nodes: list[AppNode]) -> None:
    """A stack without a database engine: an application's file cannot declare a database role."""
    for app in app_nodes:
        if app.has("databaseRoles"):
            report(app.error("databaseRoles", f"stack {app.stack!r} declares no database connection",
                             "remove databaseRoles, or ask the platform team to declare a connection under "
                             f"{PROJECT}:database"))
        app.raw("databaseRoles")


def _kubernetes_auth(auth: Node) -> tuple[str, str]:
    """The auth method's path and the audience of the cluster's service account tokens."""
    auth_path = auth.string("path", "kubernetes", rule=VAULT_NAME)
    if auth_path in RESERVED_AUTH_PATHS:
        raise auth.error("path", f"auth/{auth_path} is Vault's own", "choose another path, e.g. kubernetes",
                         edit="kubernetes")
    # Required: the audience of service account tokens differs between clusters (EKS, kind, ...),
    # and a wrong one makes every agent login fail.
    audience = auth.string("audience", rule=AUDIENCE)
    auth.done()
    return auth_path, audience


def _refuse_foreign_namespaces(stack: str, config: Mapping[str, Any]) -> None:
    """A key outside the project's, the providers' and Pulumi's namespaces is read by nobody: a
    misspelt ``vault-platfrom:transit`` would silently drop the section, and the next ``up`` would
    delete everything it declared."""
    for key in config:
        namespace, colon, rest = key.partition(":")
        if colon and namespace in KNOWN_NAMESPACES:
            continue
        close = difflib.get_close_matches(namespace, KNOWN_NAMESPACES, n=1, cutoff=0.6) if colon else []
        meant = f"{close[0]}:{rest}" if close else None
        if meant is None and not colon:
            close = difflib.get_close_matches(key, _STRUCTURED_KEYS, n=1)
            meant = f"{PROJECT}:{close[0]}" if close else None
        report(_unknown_key(stack, config, key, meant, "is in no namespace this program or its providers read",
                            f"remove it, or move it under {PROJECT}: (namespaces read: "
                            f"{', '.join(KNOWN_NAMESPACES)})"))


def _project_root(stack: str, config: Mapping[str, Any]) -> Node:
    prefix = f"{PROJECT}:"
    values = {key[len(prefix):]: value for key, value in config.items() if key.startswith(prefix)}
    return Node(stack, prefix, values)


class _SecretRefs:
    """Top-level keys that hold secrets, each referenced as ``{fromSecret: <key>}``."""

    def __init__(self, stack: str, config: Mapping[str, Any], secret_keys: Set[str]) -> None:
        self._stack = stack
        self._config = config
        self._secret_keys = secret_keys
        self.used: set[str] = set()

    def reference(self, node: Node, name: str) -> str:
        """The config key named by ``node[name]``, which must be ``{fromSecret: key}`` set as a secret."""
        value = node.raw(name)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            raise node.error(name, "holds a plaintext value where a secret is required",
                             "store the value with `pulumi config set --secret "
                             f"{PROJECT}:<key> <value>` and write {{fromSecret: <key>}} here")
        ref = Node.of(node.stack, node.path(name), value)
        key = ref.string("fromSecret", rule=CONFIG_KEY)
        ref.done()
        if key in _STRUCTURED_KEYS:
            raise ref.error("fromSecret", f"{key!r} is a structured key of the spec",
                            "name a key of its own for the secret")
        full = f"{PROJECT}:{key}"
        if self._config.get(full) is None:
            raise SpecError(self._stack, full, "is not set, but a secret is required here",
                            f"run `pulumi config set --secret {full} <value>`")
        if full not in self._secret_keys:
            raise SpecError(self._stack, full, "holds a plaintext value where a secret is required",
                            f"run `pulumi config set --secret {full} <value>` to store it encrypted")
        self.used.add(key)
        return key

    def refuse_unknown(self, root: Node, app_values: list[Mapping[str, Any]]) -> None:
        unread = [key for key in root.keys() if key not in _STRUCTURED_KEYS and key not in self.used]  # noqa: SIM118
        if not unread:
            return
        # Every {fromSecret: key} of the stack file and of its applications' files counts, also in an
        # item refused for another problem.
        referenced = set(_secret_references([*(value for key, value in self._config.items()
                                               if key.startswith(f"{PROJECT}:")), *app_values]))
        for key in unread:
            if key not in referenced:
                close = difflib.get_close_matches(key, _STRUCTURED_KEYS, n=1)
                full = f"{PROJECT}:{key}"
                report(_unknown_key(self._stack, self._config, full, f"{PROJECT}:{close[0]}" if close else None,
                                    "is not a known key", f"remove it; the known keys are "
                                    f"{', '.join(_STRUCTURED_KEYS)}, and secrets referenced as {{fromSecret: <key>}}"))


def _unknown_key(stack: str, config: Mapping[str, Any], key: str, meant: str | None, problem: str,
                 otherwise: str) -> SpecError:
    """A top-level key nothing reads, with the rename to ``meant`` as its fix (or its removal, when
    ``meant`` is set already)."""
    if meant is None:
        return SpecError(stack, key, problem, otherwise, edits=((key, REMOVE),), unknown_key=True)
    if meant in config:
        return SpecError(stack, key, f"{problem} (did you mean {meant!r}?)", f"remove it: {meant!r} is set already",
                         edits=((key, REMOVE),), unknown_key=True)
    return SpecError(stack, key, f"{problem} (did you mean {meant!r}?)", f"rename it to {meant!r}",
                     edits=((key, REMOVE), (meant, config[key])), unknown_key=True)


def _secret_references(value: Any) -> Iterator[str]:
    """Every ``{fromSecret: key}`` in a config value."""
    if isinstance(value, Mapping):
        if isinstance(value.get("fromSecret"), str):
            yield value["fromSecret"]
        for item in value.values():
            yield from _secret_references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _secret_references(item)


def _tier(stack: str, root: Node) -> Tier:
    """The stack's name when it is a tier, which a stack file cannot override (a prod stack must not
    opt into dev's rules); other stacks (``prod-eu``) say their tier."""
    if stack in TIERS:
        if root.has("tier") and root.raw("tier") != stack:
            raise root.error("tier", f"stack {stack!r} always has the {stack} rules, not {root.raw('tier')!r}",
                             "remove the setting")
        root.raw("tier")
        return stack
    return cast(Tier, root.string("tier", choices=TIERS))


def _vault_servers(root: Node, tier: Tier, secrets: _SecretRefs) -> tuple[Cluster | None, ExternalVault | None]:
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
        if attempt(lambda: _cluster_only(root)):
            report(root.error("clusterOnly", "is true, but the stack's Vault is external "
                              "(vault-platform:externalVault): there is no cluster layer to declare first, "
                              "and its operator initialized it", "remove it, and set the Vault login "
                              "(vault:address, with githubActions or vault:token)", edit=REMOVE))
        return None, attempt(lambda: external.load_external_vault(
            root.child("externalVault"), tier, secrets.reference, _autopilot), broken="externalVault")
    if not root.has("cluster"):
        report(root.error("cluster", "is not set: the stack says neither which Vault it deploys nor which one "
                          "it configures", "declare vault-platform:cluster (the Helm release this stack deploys), "
                          "or vault-platform:externalVault for a Vault that runs elsewhere (README, 'A Vault "
                          "this stack does not deploy')"))
        return None, None
    return attempt(lambda: _cluster(root.child("cluster"), tier)), None


def _refuse_in_cluster_database(root: Node, database: Database | None) -> None:
    """With an external Vault, no in-cluster PostgreSQL: there is no Vault namespace to run it beside."""
    for connection in database.connections if database else ():
        if connection.in_cluster:
            report(root.error(f"database.connections[{connection.name}].inCluster", "the in-cluster PostgreSQL "
                              "runs beside a Vault this stack deploys, and this stack's Vault is external",
                              "point host, port and adminPassword at a PostgreSQL server the Vault reaches"))


def _external_operations(root: Node, tier: Tier, vault: ExternalVault | None) -> Snapshots | None:
    """The snapshots and monitoring sections with an external Vault: snapshots only when declared, and
    only of Raft storage; no alert rules (they watch the chart's servers and volumes, which this stack
    does not run)."""
    if root.has("monitoring"):
        report(root.error("monitoring", "is set, but the stack's Vault is external: the alert rules watch the "
                          "servers, Raft and volumes of the Vault this program deploys, through the chart's "
                          "ServiceMonitor", "remove it: the Vault's operator scrapes and alerts on it", edit=REMOVE))
    root.raw("monitoring")
    if not root.has("snapshots"):
        root.raw("snapshots")
        return None
    if vault is not None and not vault.raft:
        report(root.error("snapshots", "is set, but vault-platform:externalVault.raft is false: Raft snapshots "
                          "need integrated storage", "remove snapshots (the Vault's operator backs it up), or set "
                          "externalVault.raft to true if the Vault runs on integrated storage"))
        root.raw("snapshots")
        return None
    return attempt(lambda: operations.load_snapshots(root.child("snapshots"), tier))


def _cluster(node: Node, tier: Tier) -> Cluster:
    chart_version = node.string("chartVersion")
    if (problem := rules.exact_version(chart_version)) is not None:
        raise node.error("chartVersion", problem,
                         "pin an exact chart version such as 0.34.1 (no ranges, no 'latest')")
    replicas = node.integer("replicas", minimum=1, maximum=rules.MAX_RAFT_VOTERS, why=rules.MAX_RAFT_VOTERS_WHY)
    for problem in (rules.odd_replicas(replicas), rules.enough_replicas(replicas, tier)):
        if problem is not None:
            fixes = rules.replica_counts_near(replicas, tier)
            raise node.error("replicas", problem, f"use {' or '.join(map(str, fixes))}", edit=fixes[0])
    tls_node = node.child("tls")
    tls = Tls(
        enabled=tls_node.boolean("enabled", True),
        secret_name=tls_node.string("secretName", "vault-tls", rule=K8S_SUBDOMAIN),
        cert_manager_issuer=tls_node.optional_string("certManagerIssuer", rule=K8S_SUBDOMAIN),
        ca_secret_name=tls_node.string("caSecretName", "vault-ca", rule=K8S_SUBDOMAIN),
        extra_dns_names=tls_node.strings("extraDnsNames", rule=HOST),
    )
    tls_node.done()
    if (problem := rules.tls_allowed(tls.enabled, tier)) is not None:
        raise tls_node.error("enabled", problem, "remove the setting or set it to true", edit=True)
    injector = node.child("injector")
    injector_replicas = injector.integer("replicas", 1 if tier == "dev" else 2, minimum=1,
                                         maximum=MAX_INJECTOR_REPLICAS, why=MAX_INJECTOR_REPLICAS_WHY)
    injector_resources = _resources(injector.child("resources"), ("50m", "64Mi", "250m", "256Mi"))
    injector.done()
    if (problem := rules.injector_replicas(injector_replicas, tier)) is not None:
        raise injector.error("replicas", problem, "use 2 or more", edit=2)
    storage = node.child("storage")
    data_storage = _volume_size(storage, "data")
    audit_storage = _volume_size(storage, "audit")
    storage_class = storage.optional_string("storageClass", rule=K8S_SUBDOMAIN)
    storage.done()
    cluster = Cluster(
        namespace=node.string("namespace", "vault", rule=K8S_LABEL),
        release_name=node.string("releaseName", "vault", rule=K8S_LABEL),
        chart_version=chart_version,
        replicas=replicas,
        tls=tls,
        auto_unseal=_auto_unseal(node.child("autoUnseal")) if node.has("autoUnseal") else None,
        injector_replicas=injector_replicas,
        data_storage=data_storage,
        audit_storage=audit_storage,
        storage_class=storage_class,
        server_resources=_resources(node.child("resources"), ("250m", "256Mi", "1", "1Gi")),
        injector_resources=injector_resources,
        autopilot=_autopilot(node.child("autopilot"), tier, replicas),
    )
    node.raw("autoUnseal")
    node.done()
    return cluster


# How long a server may be out of contact before autopilot takes its Raft vote (with 3 or more
# replicas). min_quorum is the replicas, so this only ever prunes servers beyond the StatefulSet's
# pods after a scale-down: short enough that a deploy's rollout sees them gone, longer in prod for
# a slow node replacement. Vault refuses less than a minute (vault/logical_raft.go).
DEAD_SERVER_THRESHOLD: dict[Tier, int] = {"dev": DAY, "staging": 5 * 60, "prod": 10 * 60}
MIN_DEAD_SERVER_THRESHOLD = 60


def _autopilot(node: Node, tier: Tier, replicas: int) -> RaftAutopilot:
    threshold = node.duration("deadServerLastContactThreshold", DEAD_SERVER_THRESHOLD[tier])
    if threshold < MIN_DEAD_SERVER_THRESHOLD:
        written = node.written("deadServerLastContactThreshold", threshold)
        raise node.error("deadServerLastContactThreshold", f"{written} is below the 1m "
                         "Vault accepts", "use 1m or more, e.g. 10m", edit="10m")
    node.done()
    return RaftAutopilot(cleanup_dead_servers=replicas >= 3, dead_server_last_contact_threshold=threshold,
                         min_quorum=replicas)


# The injector is a webhook Deployment that mostly waits: two or three replicas carry any cluster,
# and a count in the dozens is a typo, not a plan.
MAX_INJECTOR_REPLICAS = 10
MAX_INJECTOR_REPLICAS_WHY = "the injector webhook is light; more replicas only add pods"
GI = 2.0**30
MI = 2.0**20
# A Raft volume below 1Gi fills with the first snapshots; EBS, the volume type of the EKS stacks,
# tops out at 16TiB per volume (gp3, io2), so a larger claim never binds.
VOLUME_SIZE = (1 * GI, 16 * 2.0**40, "1Gi", "16Ti")
# Neither Vault nor the injector starts in less memory; a bare number is bytes to Kubernetes, so
# `memory: 256` would ask for 256 bytes.
MIN_MEMORY = (64 * MI, "64Mi")


def _volume_size(node: Node, key: str) -> str:
    """A volume claim's size: a Kubernetes quantity between 1Gi and 16Ti (``50`` is 50 bytes)."""
    size = node.string(key, "10Gi", rule=QUANTITY)
    low, high, low_text, high_text = VOLUME_SIZE
    if not low <= _quantity(size) <= high:
        raise node.error(key, f"{size} is outside the {low_text} to {high_text} a volume can have",
                         f"use a size from {low_text} to {high_text}, e.g. 10Gi",
                         edit=low_text if _quantity(size) < low else high_text)
    return size


def _resources(node: Node, defaults: tuple[str, str, str, str]) -> Resources:
    requests, limits = node.child("requests"), node.child("limits")
    resources = Resources(
        cpu_request=requests.string("cpu", defaults[0], rule=QUANTITY),
        memory_request=requests.string("memory", defaults[1], rule=QUANTITY),
        cpu_limit=limits.string("cpu", defaults[2], rule=QUANTITY),
        memory_limit=limits.string("memory", defaults[3], rule=QUANTITY),
    )
    for where, cpu, memory in ((requests, resources.cpu_request, resources.memory_request),
                               (limits, resources.cpu_limit, resources.memory_limit)):
        if _quantity(cpu) < 0.001:
            raise where.error("cpu", f"{cpu} is less than the 1m (a thousandth of a CPU) Kubernetes counts",
                              "use at least 1m, e.g. 50m", edit="50m")
        if _quantity(memory) < MIN_MEMORY[0]:
            raise where.error("memory", f"{memory} is below the {MIN_MEMORY[1]} a container here needs to start",
                              f"use at least {MIN_MEMORY[1]}, with its unit (Mi, Gi)", edit=MIN_MEMORY[1])
    for key, request, limit in (("cpu", resources.cpu_request, resources.cpu_limit),
                                ("memory", resources.memory_request, resources.memory_limit)):
        if _quantity(request) > _quantity(limit):
            raise requests.error(key, f"the request {request} is above the limit {limit}",
                                 f"request at most {limit}, or raise limits.{key}", edit=limit)
    requests.done()
    limits.done()
    node.done()
    return resources


_QUANTITY_SUFFIX = {"": 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
                    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60}


def _quantity(text: str) -> float:
    """The value of a Kubernetes quantity already checked against ``QUANTITY``: ``500m`` -> 0.5."""
    number = text.rstrip("kmMGTPEi")
    return float(number) * _QUANTITY_SUFFIX[text[len(number):]]


def _auto_unseal(node: Node) -> AutoUnseal:
    node.string("type", "awskms", choices=("awskms",))
    unseal = AutoUnseal(
        region=node.string("region", rule=AWS_REGION),
        kms_key_id=node.string("kmsKeyId"),
        role_arn=node.string("roleArn"),
    )
    if not operations.ROLE_ARN.fullmatch(unseal.role_arn):
        raise node.error("roleArn", f"{unseal.role_arn!r} is not an IAM role ARN",
                         "use arn:aws:iam::<account>:role/<name>")
    if not re.fullmatch(r"(alias/[\w/-]+|(mrk-)?[0-9a-f-]{32,36}|arn:aws[-a-z]*:kms:[\w-]+:\d{12}:(key|alias)/[\w/-]+)",
                        unseal.kms_key_id):
        raise node.error("kmsKeyId", f"{unseal.kms_key_id!r} is not a KMS key id, ARN or alias",
                         "use the key id, its ARN, or alias/<name>")
    node.done()
    return unseal


def _kv(node: Node, tier: Tier, secrets: _SecretRefs, app_nodes: list[AppNode], origins: _Origins) -> Kv:
    cas_required = node.boolean("casRequired", tier == "prod")
    if (problem := rules.cas_required(cas_required, tier)) is not None:
        raise node.error("casRequired", problem, "remove the setting or set it to true", edit=True)
    path_prefix = node.string("pathPrefix", DEFAULT_PATH_PREFIX[tier], rule=K8S_LABEL)
    kv_secrets: dict[str, KvSecret] = {}
    # The platform's secrets, then each application's own ("secrets" in its file, the same shape).
    declaring: list[tuple[Node, AppNode | None]] = [(node, None), *((app, app) for app in app_nodes)]
    for where, app in declaring:
        # One file's malformed "secrets" leaves the others' to be read.
        declared_here = attempt(partial(where.mapping, "secrets"), broken="kv.secrets:*") or {}
        for name, body in sorted(declared_here.items()):
            item = f"kv.secrets:{path_prefix}/{name}"
            with collecting(broken=item):
                if app is not None:
                    _own_name(app, app, f"secrets.{name}", name)
                secret = _kv_secret(where, name, body, path_prefix, secrets)
                if app is not None:
                    secret = replace(secret, owner=app.app.file.name)
                if name in kv_secrets:
                    raise where.error(f"secrets.{name}", f"KV secret {name!r} is declared {origins.described(item)} "
                                      "already", "give each secret its own name")
                kv_secrets[name] = secret
                origins.add(item, where.path(f"secrets.{name}"), app)
    delete_after = node.duration("deleteVersionAfter", 0)
    minimum = MIN_DELETE_VERSION_AFTER[tier != "dev"]
    if 0 < delete_after < minimum:
        raise node.error("deleteVersionAfter", f"{node.written('deleteVersionAfter', delete_after)} would "
                         "soft-delete every version, the current one too, that soon after it is written; "
                         f"{tier} keeps a version at least {format_duration(minimum)}",
                         f"use 0 (keep versions until maxVersions drops them) or at least {format_duration(minimum)}",
                         edit="0")
    kv = Kv(
        mount=node.string("mount", "secret", rule=VAULT_NAME),
        max_versions=node.integer("maxVersions", 10, minimum=1, maximum=MAX_KV_VERSIONS,
                                  why="every version is kept in Raft storage and in every snapshot"),
        cas_required=cas_required,
        delete_version_after=delete_after,
        path_prefix=path_prefix,
        secrets=tuple(secret for _, secret in sorted(kv_secrets.items())),
    )
    node.done()
    return kv


# Vault's KV v2 gives every new version a deletion time of its write time plus delete_version_after
# (vault-plugin-secrets-kv, path_data.go), the current version included: a short value makes the
# secret unreadable soon after each write. Dev may try it out; elsewhere a month is the floor.
MIN_DELETE_VERSION_AFTER = (HOUR, 30 * DAY)
MAX_KV_VERSIONS = 100
# Generated secrets: 16 characters (about 95 bits) at least; beyond 256 a length is a typo (an extra
# zero), not a requirement of any client.
GENERATED_LENGTH = (16, 256)


def _kv_secret(node: Node, name: str, body: Any, path_prefix: str, secrets: _SecretRefs) -> KvSecret:
    check_name(node, f"secrets.{name}", name, K8S_LABEL)
    secret_node = Node.of(node.stack, node.path(f"secrets.{name}"), body)
    data = secret_node.child("data")
    sources = []
    for key in sorted(data.keys()):
        check_name(data, key, key, SQL_IDENTIFIER)
        sources.append((key, _secret_value(data, key, secrets)))
    if not sources:
        raise secret_node.error("data", "declares no keys", "give the secret at least one key")
    secret = KvSecret(name=name, path=f"{path_prefix}/{name}", values=tuple(sources),
                      cas_version=secret_node.integer("casVersion", 0))
    data.done()
    secret_node.done()
    return secret


def _secret_value(node: Node, key: str, secrets: _SecretRefs) -> SecretValue:
    value = node.raw(key)
    if isinstance(value, Mapping) and "random" in value:
        source = node.child(key)
        generator = source.child("random")
        length = generator.integer("length", 32, minimum=GENERATED_LENGTH[0], maximum=GENERATED_LENGTH[1])
        generator.done()
        source.done()
        return SecretValue(config_key=None, random_length=length)
    return SecretValue(config_key=secrets.reference(node, key), random_length=None)


def _database(node: Node, tier: Tier, secrets: _SecretRefs, app_nodes: list[AppNode],
              origins: _Origins) -> Database:
    connections: dict[str, Connection] = {}
    in_cluster_seen = False
    for item in node.children("connections"):
        with collecting(broken=f"database.connections:{name_of(item)}"):
            connection = _connection(item, tier, secrets)
            refuse_duplicate(item, "name", connection.name, connections, "connection")
            if connection.in_cluster and in_cluster_seen:
                raise item.error("inCluster", "a second in-cluster PostgreSQL would collide with the first "
                                 f"(one namespace, {DEV_POSTGRES_NAMESPACE!r})", "use one in-cluster connection")
            connections[connection.name] = connection
            in_cluster_seen |= connection.in_cluster
    roles: dict[str, DatabaseRole] = {}
    # The platform's dynamic roles, then each application's own ("databaseRoles" in its file).
    declaring: list[tuple[Node, str, AppNode | None]] = [(node, "roles", None),
                                                         *((app, "databaseRoles", app) for app in app_nodes)]
    for where, key, app in declaring:
        items: list[Node] = attempt(partial(list, where.children(key)), broken="database.roles:*") or []
        for item in items:
            with collecting(broken=f"database.roles:{name_of(item)}"):
                role = _database_role(item, connections)
                if app is not None:
                    _own_name(app, item, "name", role.name)
                    role = replace(role, owner=app.app.file.name)
                if role.name in roles:
                    raise item.error("name", f"database role {role.name!r} is declared "
                                     f"{origins.described(f'database.roles:{role.name}')} already",
                                     "give each database role its own name")
                roles[role.name] = role
                origins.add(f"database.roles:{role.name}", item.key, app)
    static_roles: dict[str, StaticRole] = {}
    for item in node.children("staticRoles"):
        with collecting(broken=f"database.staticRoles:{name_of(item)}"):
            _static_role(item, connections, roles, static_roles)
    database = Database(
        mount=node.string("mount", "database", rule=VAULT_NAME),
        connections=tuple(sorted(connections.values(), key=lambda c: c.name)),
        roles=tuple(sorted(roles.values(), key=lambda r: r.name)),
        static_roles=tuple(sorted(static_roles.values(), key=lambda r: r.name)),
    )
    node.done()
    return database


def _static_role(item: Node, connections: Mapping[str, Connection], roles: Mapping[str, DatabaseRole],
                 static_roles: dict[str, StaticRole]) -> None:
    """A static role, into ``static_roles``: a database user whose password Vault rotates."""
    static_role = StaticRole(
        name=item.string("name", rule=VAULT_NAME),
        connection=_known(item, "connection", connections, "connection"),
        username=item.string("username", rule=SQL_IDENTIFIER),
        rotation_period=item.duration("rotationPeriod", 24 * HOUR),
    )
    _check_static_user(item, static_role.username, connections[static_role.connection])
    if static_role.rotation_period < 60:
        raise item.error("rotationPeriod", "Vault rotates at most once a minute", "use 1m or more", edit="1m")
    item.done()
    refuse_duplicate(item, "name", static_role.name, {**roles, **static_roles}, "database role")
    static_roles[static_role.name] = static_role


def _connection(node: Node, tier: Tier, secrets: _SecretRefs) -> Connection:
    in_cluster = node.boolean("inCluster", False)
    if in_cluster and tier != "dev":
        raise node.error("inCluster", f"the in-cluster PostgreSQL is for dev only, not {tier}",
                         "point host, port and adminPassword at the environment's database server")
    name = node.string("name", rule=VAULT_NAME)
    connection = Connection(
        name=name,
        host=_in_cluster_host(node, name) if in_cluster else node.string("host", rule=HOST),
        port=node.integer("port", DEV_POSTGRES_PORT, minimum=1, maximum=65535),
        database=node.string("database", rule=SQL_IDENTIFIER),
        admin_user=node.string("adminUser", rule=SQL_IDENTIFIER),
        admin_password_key=None if in_cluster else secrets.reference(node, "adminPassword"),
        in_cluster=in_cluster,
        ssl_mode=node.string("sslMode", "disable" if in_cluster else "verify-full", choices=SSL_MODES),
        admin_password_version=node.integer("adminPasswordVersion", 1, minimum=1),
        rotate_root=node.boolean("rotateRoot", not in_cluster),
        admin_setup=cast(AdminSetup, node.string("adminSetup", "functions", choices=ADMIN_SETUPS)),
        table_owner=node.string("tableOwner", "app_owner", rule=SQL_IDENTIFIER),
        tls_ca=ca_pem(node, "tlsCa", "the database server's certificate"),
    )
    if connection.rotate_root and in_cluster:
        raise node.error("rotateRoot", "the in-cluster PostgreSQL resets the admin password to the generated "
                         "one on every restart, which would cut Vault off after a rotation", "remove rotateRoot")
    if not connection.rotate_root and tier != "dev":
        raise node.error("rotateRoot", f"in {tier} only Vault may know the admin password once the connection "
                         "is set up", "remove rotateRoot or set it to true")
    if in_cluster and connection.port != DEV_POSTGRES_PORT:
        raise node.error("port", f"the in-cluster PostgreSQL listens on {DEV_POSTGRES_PORT}", "remove port")
    if in_cluster and node.has("adminPassword"):
        raise node.error("adminPassword", "the in-cluster PostgreSQL's password is generated",
                         "remove adminPassword")
    _check_connection_roles(node, connection)
    _check_tls(node, connection, tier)
    node.done()
    return connection


def _check_connection_roles(node: Node, connection: Connection) -> None:
    """The admin is never a superuser, the table owner or the functions' owner."""
    reserved = {FUNCTIONS_OWNER: "the SECURITY DEFINER functions' owner",
                **dict.fromkeys(SUPERUSER_NAMES, "a superuser")}
    for key, user in (("adminUser", connection.admin_user), ("tableOwner", connection.table_owner)):
        if user in reserved:
            raise node.error(key, f"{user!r} is {reserved[user]}", "use a role of its own")
    if connection.admin_user == connection.table_owner:
        raise node.error("adminUser", f"{connection.admin_user!r} is also the tableOwner, which owns the tables",
                         "give Vault an admin of its own (see README, \"The PostgreSQL admin user\")")


def _check_tls(node: Node, connection: Connection, tier: Tier) -> None:
    """Outside dev Vault verifies the server it hands the admin password to: verify-full (or
    verify-ca against the stack's own CA), at a fully qualified host name."""
    if connection.tls_ca is not None and connection.ssl_mode not in rules.VERIFYING_SSL_MODES:
        raise node.error("tlsCa", f"sslMode {connection.ssl_mode} never verifies the server's certificate",
                         "set sslMode to verify-full, or remove tlsCa")
    problem = rules.database_tls(connection.ssl_mode, connection.tls_ca is not None, tier)
    if problem is not None:
        fix = ("use verify-full, or set tlsCa to the database's own CA" if connection.ssl_mode == "verify-ca" else
               "remove sslMode (verify-full is the default), and set tlsCa when the server's CA is not a public one")
        raise node.error("sslMode", problem, fix)
    problem = rules.database_host(connection.host, tier)
    if problem is not None:
        raise node.error("host", problem, "use the server's fully qualified DNS name, the one its certificate carries")


def _check_creation_statements(node: Node, statements: tuple[str, ...], connection: Connection) -> None:
    if connection.admin_setup == "functions":
        raise node.error("creationStatements", f"connection {connection.name!r} uses the functions admin setup, "
                         f"whose admin can only call {FUNCTIONS_SCHEMA}.create_user", "declare grants instead, or "
                         f"set adminSetup: createrole on connection {connection.name!r} (see README)")
    found = creation_problem(statements)
    if found is not None:
        key = "creationStatements" if found.index is None else f"creationStatements[{found.index}]"
        raise node.error(key, found.problem, found.fix)


def _check_static_user(node: Node, username: str, connection: Connection) -> None:
    """Vault must not take over the admin, the table owner, the functions' owner or a superuser."""
    if username == connection.admin_user:
        raise node.error("username", f"{username!r} is the connection's admin user, whose password Vault "
                         "already rotates as the connection's root credential",
                         "give the static role a user of its own")
    privileged = {connection.table_owner: "the connection's tableOwner, which owns the tables",
                  FUNCTIONS_OWNER: "the owner of the SECURITY DEFINER functions",
                  **dict.fromkeys(SUPERUSER_NAMES, "a superuser")}
    if username in privileged:
        raise node.error("username", f"{username!r} is {privileged[username]}",
                         "give the static role an ordinary login user of its own")


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


def _in_cluster_host(node: Node, name: str) -> str:
    if node.has("host"):
        raise node.error("host", "the in-cluster PostgreSQL is reached at its own Service",
                         "remove host")
    node.raw("host")
    return f"{name}.{DEV_POSTGRES_NAMESPACE}.svc"


def _database_role(node: Node, connections: Mapping[str, Connection]) -> DatabaseRole:
    grants = []
    for item in node.children("grants"):
        privileges = tuple(p.upper() if isinstance(p, str) else p for p in item.strings_or_items("privileges"))
        for index, privilege in enumerate(privileges):
            if privilege not in TABLE_PRIVILEGES:
                raise item.error(f"privileges[{index}]", f"{privilege!r} is not a table privilege",
                                 f"use some of {', '.join(TABLE_PRIVILEGES)}")
        if not privileges:
            raise item.error("privileges", "is empty", "list at least one table privilege")
        grants.append(Grant(privileges=tuple(dict.fromkeys(privileges)),
                            schema=item.string("schema", "public", rule=SQL_IDENTIFIER)))
        item.done()
    statements = node.strings("creationStatements")
    if bool(grants) == node.has("creationStatements"):
        raise node.error(None, "needs exactly one of grants and creationStatements",
                         "declare grants (the statements are generated) or verbatim creationStatements")
    connection = connections[_known(node, "connection", connections, "connection")]
    if node.has("creationStatements"):
        _check_creation_statements(node, statements, connection)
    for index, grant in enumerate(grants):
        if grant.schema == FUNCTIONS_SCHEMA or grant.schema.startswith("pg_") or grant.schema == "information_schema":
            raise node.error(f"grants[{index}].schema", f"{grant.schema!r} is a system schema",
                             "grant on the application's own schemas")
    role = DatabaseRole(
        name=node.string("name", rule=VAULT_NAME),
        connection=connection.name,
        default_ttl=node.duration("defaultTtl", HOUR),
        # No longer than the tokens that take credentials from it live by default (see _app).
        max_ttl=node.duration("maxTtl", DEFAULT_TOKEN_MAX_TTL),
        grants=tuple(grants),
        creation_statements=statements,
    )
    check_ttl_order(node, "defaultTtl", role.default_ttl, "maxTtl", role.max_ttl)
    check_ttl_cap(node, "defaultTtl", role.default_ttl, rules.DATABASE_MAX_TTL_CAP)
    check_min_ttl(node, "defaultTtl", role.default_ttl, MIN_TOKEN_TTL)
    check_ttl_cap(node, "maxTtl", role.max_ttl, rules.DATABASE_MAX_TTL_CAP)
    node.done()
    return role


def data_plane(kv: Kv, database: Database | None, transit: Transit | None, pki: Pki | None) -> rules.DataPlane:
    """What the spec declares that an application's policy may reach."""
    return rules.DataPlane(
        kv_mount=kv.mount, kv_secrets=frozenset(secret.path for secret in kv.secrets),
        database_mount=database.mount if database else None,
        database_roles=frozenset(database.role) if database else frozenset(),
        static_roles=frozenset(database.static_role) if database else frozenset(),
        transit_mount=transit.mount if transit else None,
        transit_keys=frozenset(transit.key) if transit else frozenset(),
        pki_mounts=frozenset(ca.mount for ca in (pki.root, pki.intermediate) if ca) if pki else frozenset(),
        pki_roles=frozenset((pki.intermediate.mount, role) for role in pki.role) if pki else frozenset(),
    )


def _policies(root: Node, kv: Kv, database: Database | None, transit: Transit | None, plane: rules.DataPlane,
              reserved: Iterable[str]) -> tuple[Policy, ...]:
    reserved_names = set(reserved)
    policies: dict[str, Policy] = {}
    kv_paths = {secret.path for secret in kv.secrets}
    for node in root.children("policies"):
        with collecting(broken=f"policies:{name_of(node)}"):
            policy = _policy(node, kv, kv_paths, database, transit, plane, reserved_names)
            refuse_duplicate(node, "name", policy.name, policies, "policy")
            policies[policy.name] = policy
    return tuple(sorted(policies.values(), key=lambda p: p.name))


def _policy(node: Node, kv: Kv, kv_paths: set[str], database: Database | None, transit: Transit | None,
            plane: rules.DataPlane, reserved: Set[str]) -> Policy:
    name = node.string("name", rule=VAULT_NAME)
    if (why := _reserved_policy(name, reserved)) is not None:
        raise node.error("name", f"{name!r} is reserved: {why}", "choose a name of its own for this policy, "
                         "and use it in the apps' policies")
    path_rules = []
    for rule_node in node.children("rules"):
        with collecting():
            path = rule_node.string("path")
            capabilities = rule_node.strings("capabilities")
            for index, capability in enumerate(capabilities):
                if capability not in CAPABILITIES:
                    close = difflib.get_close_matches(capability, CAPABILITIES, n=1)
                    raise rule_node.error(f"capabilities[{index}]", f"{capability!r} is not a Vault capability",
                                          f"use some of {', '.join(CAPABILITIES)}"
                                          + (f"; did you mean {close[0]!r}?" if close else ""))
                if capability == "sudo":
                    raise rule_node.error(f"capabilities[{index}]", "sudo is for the platform admin policy only",
                                          "grant the capabilities the holder needs without sudo")
            if not capabilities:
                raise rule_node.error("capabilities", "is empty", "list at least one capability")
            _check_policy_path(rule_node, path, kv, kv_paths, database, transit)
            if (refusal := rules.data_plane_refusal(name, path, capabilities, plane)) is not None:
                raise rule_node.error("path", refusal.problem, refusal.fix)
            path_rules.append(PolicyRule(path=path, capabilities=tuple(dict.fromkeys(capabilities))))
            rule_node.done()
    if not path_rules and not node.strings_or_items("rules"):
        raise node.error("rules", "is empty", "give the policy at least one path rule")
    node.done()
    return Policy(name=name, rules=tuple(path_rules))


def _reserved_policy(name: str, reserved: Set[str]) -> str | None:
    """Why ``name`` cannot be a spec policy's, or ``None``."""
    if name == "root":
        return "Vault's built-in policy that grants everything, held only by root tokens"
    if name == "default":
        return "Vault's built-in policy, attached to every token; a spec policy cannot replace it"
    if name in reserved:
        return (f"the hand-written policy in policies/acl/{name}.hcl, declared as it is; a spec policy of the "
                "same name would overwrite it")
    if name == operations.SNAPSHOT_IDENTITY:
        return "the Raft snapshot job's policy, generated by the program"
    if name.startswith(APP_POLICY_PREFIX):
        return (f"names starting with {APP_POLICY_PREFIX!r} are the policies generated per application "
                f"({APP_POLICY_PREFIX}<app>), which a spec policy would overwrite")
    return None


def _check_policy_path(node: Node, path: str, kv: Kv, kv_paths: set[str], database: Database | None,
                       transit: Transit | None) -> None:
    """A path into the KV or database mount must name something the spec declares."""
    if not re.fullmatch(r"[A-Za-z0-9_+*/.-]+", path) or path.startswith("/"):
        raise node.error("path", f"{path!r} is not a Vault API path",
                         "write it like secret/data/<prefix>/<name>, without a leading '/'")
    for area in ("data", "metadata"):
        kv_prefix = f"{kv.mount}/{area}/"
        if path.startswith(kv_prefix):
            target = path[len(kv_prefix):]
            if not _matches(target, kv_paths):
                what, why, fix, meant = _undeclared_kv_path(target, kv, kv_paths)
                raise node.error("path", f"{path!r} refers to {what}, which {why}", fix,
                                 edit=f"{kv_prefix}{meant}" if meant else None, refers_to=f"kv.secrets:{target}")
    if database is not None:
        creds_prefix = f"{database.mount}/creds/"
        if path.startswith(creds_prefix):
            role = path[len(creds_prefix):]
            if not _matches(role, database.role.keys()):
                raise node.error("path", f"{path!r} refers to database role {role!r}, which is not "
                                 "declared", f"declare it under database.roles ({declared(database.role)})",
                                 refers_to=f"database.roles:{role}")
        static_prefix = f"{database.mount}/static-creds/"
        if path.startswith(static_prefix):
            role = path[len(static_prefix):]
            if not _matches(role, database.static_role.keys()):
                raise node.error("path", f"{path!r} refers to static database role {role!r}, which is not "
                                 "declared",
                                 f"declare it under database.staticRoles ({declared(database.static_role)})",
                                 refers_to=f"database.staticRoles:{role}")
    if transit is not None:
        operation, _, key = path.removeprefix(f"{transit.mount}/").partition("/")
        if operation == "datakey":  # datakey/<plaintext|wrapped>/<key>
            key = key.partition("/")[2]
        elif operation == "keys":  # keys/<key>, keys/<key>/config, keys/<key>/rotate
            key = key.partition("/")[0]
        names_key = operation in (*rules.TRANSIT_DATA_OPERATIONS, "datakey", "keys")
        if path.startswith(f"{transit.mount}/") and names_key and key and not _matches(key, transit.key.keys()):
            raise node.error("path", f"{path!r} refers to transit key {key!r}, which is not declared",
                             f"declare it under transit.keys ({declared(transit.key)})",
                             refers_to=f"transit.keys:{key}")


def _undeclared_kv_path(target: str, kv: Kv, kv_paths: Set[str]) -> tuple[str, str, str, str | None]:
    """A reference to an undeclared KV path: what it names, what is wrong, the fix, and the path meant
    when there is one.

    Secrets are declared by name and live under the environment's prefix: ``api-service`` is
    ``production/api-service`` in prod, and saying so is the whole fix."""
    what = f"KV path {target!r}"
    prefixed = f"{kv.path_prefix}/{target}"
    if _matches(prefixed, kv_paths):
        return what, f"misses the environment's prefix {kv.path_prefix + '/'!r}", f"write {prefixed!r}", prefixed
    _, _, tail = target.partition("/")
    if tail and _matches(f"{kv.path_prefix}/{tail}", kv_paths):
        meant = f"{kv.path_prefix}/{tail}"
        return what, f"has another environment's prefix (this stack's is {kv.path_prefix!r})", \
            f"write {meant!r}", meant
    close = difflib.get_close_matches(target, sorted(kv_paths), n=1, cutoff=0.8)
    if close:
        return what, "is not declared", f"did you mean {close[0]!r}? ({declared(kv_paths)})", close[0]
    return what, "is not declared", f"declare it under kv.secrets, or fix the path ({declared(kv_paths)})", None


def _apps(app_nodes: list[AppNode], kv: Kv, database: Database | None, policies: tuple[Policy, ...],
          default_audience: str, transit: Transit | None, pki: Pki | None, origins: _Origins) -> tuple[App, ...]:
    kv_paths = {secret.path for secret in kv.secrets}
    role_names = {role.name: role for role in database.roles} if database else {}
    policy_names = {policy.name: policy for policy in policies}
    apps = []
    for node in app_nodes:
        with collecting():
            app = _app(node, kv, kv_paths, database, role_names, policy_names, default_audience, transit, pki,
                       origins)
            _check_team_reach(node, app, origins)
            apps.append(app)
    return tuple(sorted(apps, key=lambda a: a.name))


def _app(node: AppNode, kv: Kv, kv_paths: Set[str], database: Database | None, role_names: Mapping[str, object],
         policy_names: Mapping[str, object], default_audience: str, transit: Transit | None,
         pki: Pki | None, origins: _Origins) -> App:
    for key in ("namespace", "serviceAccount"):
        value = node.raw(key)
        if isinstance(value, str) and (problem := rules.wildcard_binding(key, value)) is not None:
            raise node.error(key, problem, f"bind the application's own {key}")
    if node.has("name"):
        raise node.error("name", f"is not read: an application is named by its file ({node.app.file.name!r})",
                         "remove it; to rename the application, rename its file")
    app = App(
        name=node.app.file.name,
        namespace=node.string("namespace", rule=K8S_LABEL),
        service_account=node.string("serviceAccount", rule=K8S_SUBDOMAIN),
        token_ttl=node.duration("tokenTtl", HOUR),
        token_max_ttl=node.duration("tokenMaxTtl", DEFAULT_TOKEN_MAX_TTL),
        kv_paths=node.strings("kvPaths", rule=KV_PATH),
        database_role=node.optional_string("databaseRole", rule=VAULT_NAME),
        policies=node.strings("policies", rule=VAULT_NAME),
        audience=node.string("audience", default_audience, rule=AUDIENCE),
        job=node.boolean("job", False),
        team=node.app.file.team,
        **_app_access(node, transit, pki, database),
    )
    if app.name == operations.SNAPSHOT_IDENTITY:
        report(node.error(None, f"{app.name!r} is the Raft snapshot job's Kubernetes auth role",
                          "choose another name (rename the file)"))
    if (problem := rules.default_service_account(app.service_account)) is not None:
        report(node.error("serviceAccount", problem,
                          "create a service account for the application and run its pods as it"))
    check_ttl_order(node, "tokenTtl", app.token_ttl, "tokenMaxTtl", app.token_max_ttl)
    check_ttl_cap(node, "tokenTtl", app.token_ttl, rules.TOKEN_TTL_CAP)
    check_ttl_cap(node, "tokenMaxTtl", app.token_max_ttl, rules.TOKEN_MAX_TTL_CAP)
    check_min_ttl(node, "tokenTtl", app.token_ttl, MIN_TOKEN_TTL)
    for index, path in enumerate(app.kv_paths):
        if path not in kv_paths:
            what, why, fix, meant = _undeclared_kv_path(path, kv, kv_paths)
            report(node.error(f"kvPaths[{index}]", f"{what} {why}", fix, edit=meant,
                              refers_to=f"kv.secrets:{path}"))
    if app.database_role is not None and app.database_role not in role_names:
        report(node.error("databaseRole", f"database role {app.database_role!r} is not declared",
                          f"declare it under database.roles ({declared(role_names)})",
                          refers_to=f"database.roles:{app.database_role}"))
    elif app.database_role is not None:
        _check_lease_within_token(node, app, role_names[app.database_role], origins)
    for index, policy in enumerate(app.policies):
        if policy not in policy_names:
            report(node.error(f"policies[{index}]", f"policy {policy!r} is not declared",
                              f"declare it under policies ({declared(policy_names)})",
                              refers_to=f"policies:{policy}"))
    node.raw("secrets")
    node.raw("databaseRoles")
    node.done()
    return app


def _check_team_reach(node: AppNode, app: App, origins: _Origins) -> None:
    """An application reads what the platform declares (the stack file) and what its own team's
    files declare, never what another team's file declares: a team's folder is approved by that
    team (``.github/CODEOWNERS``), which must not be enough to reach another team's secrets."""
    references = [(f"kvPaths[{index}]", f"kv.secrets:{path}") for index, path in enumerate(app.kv_paths)]
    if app.database_role is not None:
        references.append(("databaseRole", f"database.roles:{app.database_role}"))
    for key, item in references:
        owner = origins.app.get(item)
        if owner is not None and owner.app.file.team != node.app.file.team:
            report(node.error(key, f"{item.partition(':')[2]!r} is declared by team {owner.app.file.team!r} "
                              f"({owner.app.file.path}): an application reaches only what the stack file or its "
                              "own team's files declare",
                              f"declare one of its own in {node.app.file.path}, or ask the platform team to "
                              "declare a shared one in the stack file"))


# The agent renews its token at about two thirds of its TTL and logs in again once it cannot: below a
# minute it would spend its life logging in.
MIN_TOKEN_TTL = 60


def _check_lease_within_token(node: Node, app: App, role: object, origins: _Origins) -> None:
    """Refuses a database role whose credentials would be renewed for longer than the application's
    tokens live: a lease belongs to the token that created it, and Vault revokes it (drops the
    database user, ending its sessions) when that token expires, whatever the role's maxTtl says."""
    if not isinstance(role, DatabaseRole):
        return
    problem = rules.lease_within_token(role.max_ttl, app.token_max_ttl, app.name)
    if problem is None:
        return
    key = origins.key[f"database.roles:{role.name}"]
    token_max = format_duration(app.token_max_ttl)
    edits: tuple[tuple[str, Any], ...] = ((f"{key}.maxTtl", token_max),)
    if role.default_ttl > app.token_max_ttl:
        edits = ((f"{key}.defaultTtl", token_max), *edits)
    report(SpecError(
        node.stack, f"{key}.maxTtl", problem,
        f"set it to {token_max} or less, or raise tokenMaxTtl of application {app.name!r} to "
        f"{format_duration(role.max_ttl)} (at most {format_duration(rules.TOKEN_MAX_TTL_CAP)})",
        edits=edits, refers_to=f"database.roles:{role.name}"))


def _app_access(node: Node, transit: Transit | None, pki: Pki | None,
                database: Database | None) -> dict[str, Any]:
    """The application's transit keys, certificate and static database role (see ``sections``)."""
    access = sections.load_app_access(node, transit, pki, database)
    return {"transit": access.transit, "certificate": access.certificate,
            "static_database_role": access.static_database_role}


def _cluster_only(root: Node) -> bool:
    """``clusterOnly``: true on a new environment's first ``up`` only."""
    return root.flag("clusterOnly", "write true (a new environment's first `up` only) or remove the key")


def _removals(root: Node) -> tuple[str, ...]:
    """``removals``: the stateful configuration the stack means to delete, by Vault path. Each is
    declared unprotected while it is still in the spec; the change that drops it from the spec then
    deletes it. A path no longer declared is harmless here (remove it from the list afterwards)."""
    paths = root.strings("removals")
    for index, path in enumerate(paths):
        if not rules.REMOVAL_PATH.fullmatch(path):
            raise root.error(f"removals[{index}]", f"{path!r} names no mount, auth method, audit device or "
                             "transit key", "write sys/mounts/<path>, sys/auth/<path>, sys/audit/<path> or "
                             "<transit mount>/keys/<name> (a PKI CA goes with its mount)")
    return tuple(dict.fromkeys(paths))


def _vault_access(stack: str, config: Mapping[str, Any], secret_keys: Set[str], *, cluster_only: bool,
                  github: GithubActions | None, ci_role: str | None, ci_token_file: str | None, tier: Tier,
                  ca_public: bool, external: bool = False) -> VaultAccess | None:
    """How ``pulumi up`` reaches Vault, or ``None`` for a stack that says it is cluster-only: the token
    in ``vault:token`` when set (the bootstrap run, break-glass), else the CI job's OIDC token through
    the ``githubActions`` login once ``vault:address`` is set.

    Without a login the program can declare only the cluster layer, and ``pulumi up`` would then
    delete everything the configuration layer declared before: a missing login is refused unless
    the stack states ``clusterOnly`` (a new environment's first ``up``, before Vault is initialized).
    """
    logins = [key for key in LOGIN_KEYS if config.get(key) is not None]
    if cluster_only:
        if logins:
            raise SpecError(stack, f"{PROJECT}:clusterOnly", f"is true, but {logins[0]} is set: a stack that "
                            "logs in to Vault declares the configuration layer too",
                            f"remove {PROJECT}:clusterOnly once Vault is initialized, or remove {logins[0]}",
                            edits=((f"{PROJECT}:clusterOnly", REMOVE),))
        return None
    # CI's login: its OIDC token, once the stack names the address (clusterOnly, above, overrides it).
    jwt = not logins and github is not None and config.get("vault:address") is not None
    if jwt:
        logins = ["vault:address"]
    if not logins and external:  # no cluster layer to fall back on: the stack configures Vault or nothing
        raise SpecError(stack, LOGIN_KEYS[0], "is not set, and no other Vault login (githubActions with "
                        "vault:address) is configured: the program cannot configure the external Vault",
                        "set vault:address and declare githubActions (CI's login), or, for a run by hand, run "
                        f"`pulumi config set --secret {LOGIN_KEYS[0]} <token>`")
    if not logins:
        raise SpecError(stack, LOGIN_KEYS[0], "is not set, and no other Vault login (githubActions with "
                        "vault:address) is configured: the "
                        "program would declare only the cluster layer, and `pulumi up` would delete the auth "
                        "methods, policies, secrets engines and audit devices it declared before",
                        f"run `pulumi config set --secret {LOGIN_KEYS[0]} <token>` (README, 'Bringing up a new "
                        f"environment'); only for a new environment's first `up`, before Vault is initialized, "
                        f"set {PROJECT}:clusterOnly to true instead")
    token_key = "vault:token"
    if not jwt and token_key not in secret_keys:
        raise SpecError(stack, token_key, "holds a plaintext value where a secret is required",
                        f"run `pulumi config set --secret {token_key} <token>`")
    address = config.get("vault:address")
    if not isinstance(address, str) or not re.fullmatch(r"https?://[^\s/]+(:\d+)?/?", address):
        raise SpecError(stack, "vault:address", f"{address!r} is not a Vault address" if address else
                        "is required once vault:token is set", "run `pulumi config set vault:address "
                        "https://<host>:8200`")
    ca_cert_file = _vault_ca(stack, config.get("vault:caCertFile"), urlsplit(address).scheme, tier, ca_public)
    if not jwt:
        return VaultAccess(address=address, token_key=token_key, ca_cert_file=ca_cert_file)
    assert github is not None
    if urlsplit(address).scheme == "http" and not _loopback(urlsplit(address).hostname or ""):
        raise SpecError(stack, "vault:address", f"{address!r} is plain http to another machine: the CI job's "
                        "login would send its OIDC token, and get its Vault token back, in clear",
                        "serve Vault with TLS (cluster.tls) and write its https address, with vault:caCertFile "
                        "(README, \"Vault's CA\"); plain http only to a loopback address (a port-forward)")
    role = identity.ci_role(ci_role or "deploy")
    if role is None:
        raise SpecError(stack, CI_ROLE_VARIABLE, f"{ci_role!r} is not a role of the GitHub Actions login",
                        "set it to deploy (pulumi up on main) or preview (a pull request's preview)")
    if ci_token_file is not None and not Path(ci_token_file).is_file():
        raise SpecError(stack, TOKEN_FILE_VARIABLE, f"{ci_token_file!r} is not a file",
                        f"write the job's Vault token there first (`platformctl vault-login {stack} > <file>`), "
                        f"or unset {TOKEN_FILE_VARIABLE} to log in with TERRAFORM_VAULT_AUTH_JWT")
    return VaultAccess(address=address, token_key=None, ca_cert_file=ca_cert_file,
                       jwt_login=JwtLogin(mount=github.path, role=role, token_file=ci_token_file))


def _loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address (127.0.0.0/8, ::1): traffic that never leaves the machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _vault_ca(stack: str, ca_cert_file: object, scheme: str, tier: Tier, ca_public: bool) -> str | None:
    """``vault:caCertFile``: a file of the repository holding the CA certificate(s) that verify Vault's,
    which the provider, ``platformctl vault-login`` and ``platformctl rollout`` all use. Outside dev an
    https address needs one, unless the stack states that Vault's certificate chains to a public CA
    (``vaultCaPublic``): the servers' certificate comes from the private ``platform-ca``, which no
    runner's trust store holds."""
    key, public_key = "vault:caCertFile", f"{PROJECT}:vaultCaPublic"
    fix = (f"commit the CA's PEM as stacks/ca/{stack}.pem and run `pulumi config set {key} stacks/ca/{stack}.pem` "
           "(README, \"Vault's CA\")")
    if ca_cert_file is None:
        if scheme == "https" and tier != "dev" and not ca_public:
            raise SpecError(stack, key, "is not set: Vault's certificate comes from the private platform-ca, "
                            "which the provider, vault-login and rollout would look for in the machine's trust store",
                            f"{fix}; or set {public_key} to true if Vault's certificate chains to a public CA")
        return None
    if ca_public:
        raise SpecError(stack, public_key, f"is true, but {key} names a CA file", "remove one of the two",
                        edits=((public_key, REMOVE),))
    if not isinstance(ca_cert_file, str) or not ca_cert_file:
        raise SpecError(stack, key, f"expected a file path, got {ca_cert_file!r}", fix)
    path = project_file(ca_cert_file)
    if not path.is_file():
        raise SpecError(stack, key, f"{ca_cert_file!r} is not a file (a relative path starts where Pulumi.yaml "
                        "is)", fix)
    if (problem := ca_problem(path.read_text(errors="replace"))) is not None:
        raise SpecError(stack, key, f"{ca_cert_file!r} {problem}", fix)
    return ca_cert_file


def _known(node: Node, key: str, names: Mapping[str, object], what: str, kind: str = "database.connections") -> str:
    value = node.string(key, rule=VAULT_NAME)
    if value not in names:
        close = difflib.get_close_matches(value, list(names), n=1)
        raise node.error(key, f"{what} {value!r} is not declared",
                         f"use {close[0]!r}" if close else f"declare it, or use a declared one ({declared(names)})",
                         edit=close[0] if close else None, refers_to=f"{kind}:{value}")
    return value




def _matches(pattern: str, names: Set[str]) -> bool:
    """``pattern`` names a declared item; a glob (``*``, ``+``) must match at least one.

    The exact case is a set lookup, so checking every policy of hundreds of apps stays linear.
    """
    if "*" not in pattern and "+" not in pattern:
        return pattern in names
    glob = pattern.replace("+", "*")
    return any(fnmatch.fnmatchcase(name, glob) for name in names)


