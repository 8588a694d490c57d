"""Stack config -> :class:`EnvironmentSpec`, refusing bad input before any resource is declared."""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable, Mapping, Set
from typing import Any, cast

from .. import rules
from . import sections
from ._reader import (
    AUDIENCE,
    AWS_REGION,
    CONFIG_KEY,
    HOST,
    K8S_LABEL,
    K8S_SUBDOMAIN,
    KV_PATH,
    QUANTITY,
    SQL_IDENTIFIER,
    VAULT_NAME,
    Node,
    SpecError,
    check_name,
    check_ttl_cap,
    check_ttl_order,
    declared,
    refuse_duplicate,
)
from .durations import HOUR
from .model import (
    App,
    AutoUnseal,
    Cluster,
    Connection,
    Database,
    DatabaseRole,
    EnvironmentSpec,
    Grant,
    Kv,
    KvSecret,
    Pki,
    Policy,
    PolicyRule,
    Resources,
    SecretValue,
    StaticRole,
    Tier,
    Tls,
    Transit,
    VaultAccess,
)

PROJECT = "vault-platform"
TIERS: tuple[Tier, ...] = ("dev", "staging", "prod")
CAPABILITIES = ("create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe", "recover")
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
APP_POLICY_PREFIX = "app-"
SSL_MODES = ("disable", "require", "verify-ca", "verify-full")
DEV_POSTGRES_NAMESPACE = "postgres"
# Paths Vault itself owns: a secrets engine cannot be mounted there.
RESERVED_MOUNTS = ("sys", "auth", "identity", "cubbyhole")
RESERVED_AUTH_PATHS = ("token",)
# Transit endpoints that name a key: <mount>/<endpoint>/<key>.
TRANSIT_KEY_PATHS = ("keys", "encrypt", "decrypt", "rewrap", "sign", "verify", "hmac", "datakey", "export",
                     "backup", "restore")
DEV_POSTGRES_PORT = 5432
DEFAULT_PATH_PREFIX: dict[Tier, str] = {"dev": "development", "staging": "staging", "prod": "production"}
_STRUCTURED_KEYS = ("tier", "cluster", "kubernetesAuth", "kv", "database", "policies", "apps", "audit",
                    "transit", "pki")


def load_spec(stack: str, config: Mapping[str, Any], secret_keys: Set[str],
              reserved_policies: Iterable[str] = ()) -> EnvironmentSpec:
    """Validates a stack's whole config and returns its spec, or raises one :class:`SpecError`.

    ``config`` maps full keys (``vault-platform:cluster``) to decoded values; ``secret_keys`` holds
    the keys stored as secrets; ``reserved_policies`` are the names of the hand-written policies.
    """
    root = _project_root(stack, config)
    secrets = _SecretRefs(stack, config, secret_keys)
    tier = _tier(stack, root)
    cluster = _cluster(root.child("cluster"), tier)
    auth = root.child("kubernetesAuth")
    auth_path = auth.string("path", "kubernetes", rule=VAULT_NAME)
    if auth_path in RESERVED_AUTH_PATHS:
        raise auth.error("path", f"auth/{auth_path} is Vault's own", "choose another path, e.g. kubernetes")
    # Required: the audience of service account tokens differs between clusters (EKS, kind, ...),
    # and a wrong one makes every agent login fail.
    audience = auth.string("audience", rule=AUDIENCE)
    auth.done()
    kv = _kv(root.child("kv"), tier, secrets)
    database = _database(root.child("database"), tier, secrets) if root.has("database") else None
    root.raw("database")
    transit = sections.load_transit(root.child("transit"), tier) if root.has("transit") else None
    root.raw("transit")
    pki = sections.load_pki(root.child("pki"), tier) if root.has("pki") else None
    root.raw("pki")
    policies = _policies(root, kv, database, transit, reserved_policies)
    apps = _apps(root, kv, database, policies, audience, transit, pki)
    audit = sections.load_audit(root.child("audit"), tier, sections.mounts_of(
        [kv.mount], [database.mount] if database else [], [transit.mount] if transit else [],
        [ca.mount for ca in (pki.root, pki.intermediate) if ca is not None] if pki else []))
    _check_mounts(root, [("kv.mount", kv.mount)]
                  + ([("database.mount", database.mount)] if database else [])
                  + ([("transit.mount", transit.mount)] if transit else [])
                  + ([(f"pki.{ca_key}.mount", ca.mount) for ca_key, ca in (("root", pki.root),
                                                                            ("intermediate", pki.intermediate))
                      if ca is not None] if pki else []))
    if database is not None and any(c.in_cluster for c in database.connections) and (
            cluster.namespace == DEV_POSTGRES_NAMESPACE):
        raise root.error("cluster.namespace", f"{DEV_POSTGRES_NAMESPACE!r} is the in-cluster PostgreSQL's namespace",
                         "keep Vault in a namespace of its own, e.g. vault")
    secrets.refuse_unknown(root)
    return EnvironmentSpec(
        stack=stack, tier=tier, cluster=cluster, kubernetes_auth_path=auth_path, kv=kv,
        database=database, vault=_vault_access(stack, config, secret_keys),
        policies=policies, apps=apps, audit=audit, transit=transit, pki=pki,
    )


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

    def refuse_unknown(self, root: Node) -> None:
        for key in root.keys():  # noqa: SIM118 (a Node, not a dict)
            if key not in _STRUCTURED_KEYS and key not in self.used:
                close = difflib.get_close_matches(key, _STRUCTURED_KEYS, n=1)
                hint = f"did you mean {close[0]!r}?" if close else (
                    f"the known keys are {', '.join(_STRUCTURED_KEYS)}, and secrets referenced as "
                    "{fromSecret: <key>}")
                raise SpecError(self._stack, f"{PROJECT}:{key}", "is not a known key",
                                f"remove it or rename it; {hint}")


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


def _cluster(node: Node, tier: Tier) -> Cluster:
    chart_version = node.string("chartVersion")
    if (problem := rules.exact_version(chart_version)) is not None:
        raise node.error("chartVersion", problem,
                         "pin an exact chart version such as 0.34.1 (no ranges, no 'latest')")
    replicas = node.integer("replicas", minimum=1)
    if (problem := rules.odd_replicas(replicas)) is not None:
        raise node.error("replicas", problem, f"use {replicas - 1} or {replicas + 1}")
    if (problem := rules.enough_replicas(replicas, tier)) is not None:
        raise node.error("replicas", problem, "use 3 or 5 replicas")
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
        raise tls_node.error("enabled", problem,
                             "remove the setting or set it to true")
    injector = node.child("injector")
    injector_replicas = injector.integer("replicas", 1 if tier == "dev" else 2, minimum=1)
    injector_resources = _resources(injector.child("resources"), ("50m", "64Mi", "250m", "256Mi"))
    injector.done()
    if (problem := rules.injector_replicas(injector_replicas, tier)) is not None:
        raise injector.error("replicas", problem, "use 2 or more")
    storage = node.child("storage")
    data_storage = storage.string("data", "10Gi", rule=QUANTITY)
    audit_storage = storage.string("audit", "10Gi", rule=QUANTITY)
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
    )
    node.raw("autoUnseal")
    node.done()
    return cluster


def _resources(node: Node, defaults: tuple[str, str, str, str]) -> Resources:
    requests, limits = node.child("requests"), node.child("limits")
    resources = Resources(
        cpu_request=requests.string("cpu", defaults[0], rule=QUANTITY),
        memory_request=requests.string("memory", defaults[1], rule=QUANTITY),
        cpu_limit=limits.string("cpu", defaults[2], rule=QUANTITY),
        memory_limit=limits.string("memory", defaults[3], rule=QUANTITY),
    )
    for key, request, limit in (("cpu", resources.cpu_request, resources.cpu_limit),
                                ("memory", resources.memory_request, resources.memory_limit)):
        if _quantity(request) > _quantity(limit):
            raise requests.error(key, f"the request {request} is above the limit {limit}",
                                 f"request at most {limit}, or raise limits.{key}")
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
    if not re.fullmatch(r"arn:aws[-a-z]*:iam::\d{12}:role/[\w+=,.@/-]+", unseal.role_arn):
        raise node.error("roleArn", f"{unseal.role_arn!r} is not an IAM role ARN",
                         "use arn:aws:iam::<account>:role/<name>")
    if not re.fullmatch(r"(alias/[\w/-]+|(mrk-)?[0-9a-f-]{32,36}|arn:aws[-a-z]*:kms:[\w-]+:\d{12}:(key|alias)/[\w/-]+)",
                        unseal.kms_key_id):
        raise node.error("kmsKeyId", f"{unseal.kms_key_id!r} is not a KMS key id, ARN or alias",
                         "use the key id, its ARN, or alias/<name>")
    node.done()
    return unseal


def _kv(node: Node, tier: Tier, secrets: _SecretRefs) -> Kv:
    cas_required = node.boolean("casRequired", tier == "prod")
    if (problem := rules.cas_required(cas_required, tier)) is not None:
        raise node.error("casRequired", problem, "remove the setting or set it to true")
    path_prefix = node.string("pathPrefix", DEFAULT_PATH_PREFIX[tier], rule=K8S_LABEL)
    kv_secrets = []
    for name, body in sorted(node.mapping("secrets").items()):
        check_name(node, f"secrets.{name}", name, K8S_LABEL)
        secret_node = Node.of(node.stack, node.path(f"secrets.{name}"), body)
        data = secret_node.child("data")
        sources = []
        for key in sorted(data.keys()):
            check_name(data, key, key, SQL_IDENTIFIER)
            sources.append((key, _secret_value(data, key, secrets)))
        if not sources:
            raise secret_node.error("data", "declares no keys", "give the secret at least one key")
        kv_secrets.append(KvSecret(name=name, path=f"{path_prefix}/{name}", values=tuple(sources),
                                   cas_version=secret_node.integer("casVersion", 0)))
        data.done()
        secret_node.done()
    kv = Kv(
        mount=node.string("mount", "secret", rule=VAULT_NAME),
        max_versions=node.integer("maxVersions", 10, minimum=1),
        cas_required=cas_required,
        delete_version_after=node.duration("deleteVersionAfter", 0),
        path_prefix=path_prefix,
        secrets=tuple(kv_secrets),
    )
    node.done()
    return kv


def _secret_value(node: Node, key: str, secrets: _SecretRefs) -> SecretValue:
    value = node.raw(key)
    if isinstance(value, Mapping) and "random" in value:
        source = node.child(key)
        generator = source.child("random")
        length = generator.integer("length", 32, minimum=16)
        generator.done()
        source.done()
        return SecretValue(config_key=None, random_length=length)
    return SecretValue(config_key=secrets.reference(node, key), random_length=None)


def _database(node: Node, tier: Tier, secrets: _SecretRefs) -> Database:
    connections: dict[str, Connection] = {}
    in_cluster_seen = False
    for item in node.children("connections"):
        connection = _connection(item, tier, secrets)
        refuse_duplicate(item, "name", connection.name, connections, "connection")
        if connection.in_cluster and in_cluster_seen:
            raise item.error("inCluster", "a second in-cluster PostgreSQL would collide with the first "
                             f"(one namespace, {DEV_POSTGRES_NAMESPACE!r})", "use one in-cluster connection")
        connections[connection.name] = connection
        in_cluster_seen |= connection.in_cluster
    roles: dict[str, DatabaseRole] = {}
    for item in node.children("roles"):
        role = _database_role(item, connections)
        refuse_duplicate(item, "name", role.name, roles, "database role")
        roles[role.name] = role
    static_roles: dict[str, StaticRole] = {}
    for item in node.children("staticRoles"):
        static_role = StaticRole(
            name=item.string("name", rule=VAULT_NAME),
            connection=_known(item, "connection", connections, "connection"),
            username=item.string("username", rule=SQL_IDENTIFIER),
            rotation_period=item.duration("rotationPeriod", 24 * HOUR),
        )
        if static_role.username == connections[static_role.connection].admin_user:
            raise item.error("username", f"{static_role.username!r} is the connection's admin user, whose "
                             "password Vault already rotates as the connection's root credential",
                             "give the static role a user of its own")
        if static_role.rotation_period < 60:
            raise item.error("rotationPeriod", "Vault rotates at most once a minute", "use 1m or more")
        item.done()
        refuse_duplicate(item, "name", static_role.name, {**roles, **static_roles}, "database role")
        static_roles[static_role.name] = static_role
    database = Database(
        mount=node.string("mount", "database", rule=VAULT_NAME),
        connections=tuple(sorted(connections.values(), key=lambda c: c.name)),
        roles=tuple(sorted(roles.values(), key=lambda r: r.name)),
        static_roles=tuple(sorted(static_roles.values(), key=lambda r: r.name)),
    )
    node.done()
    return database


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
        ssl_mode=node.string("sslMode", "disable" if in_cluster else "require", choices=SSL_MODES),
        admin_password_version=node.integer("adminPasswordVersion", 1, minimum=1),
        rotate_root=node.boolean("rotateRoot", not in_cluster),
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
    node.done()
    return connection


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
    if bool(grants) == bool(statements):
        raise node.error(None, "needs exactly one of grants and creationStatements",
                         "declare grants (the statements are generated) or verbatim creationStatements")
    role = DatabaseRole(
        name=node.string("name", rule=VAULT_NAME),
        connection=_known(node, "connection", connections, "connection"),
        default_ttl=node.duration("defaultTtl", HOUR),
        max_ttl=node.duration("maxTtl", 24 * HOUR),
        grants=tuple(grants),
        creation_statements=statements,
    )
    check_ttl_order(node, "defaultTtl", role.default_ttl, "maxTtl", role.max_ttl)
    check_ttl_cap(node, "defaultTtl", role.default_ttl, rules.DATABASE_MAX_TTL_CAP)
    check_ttl_cap(node, "maxTtl", role.max_ttl, rules.DATABASE_MAX_TTL_CAP)
    node.done()
    return role


def _policies(root: Node, kv: Kv, database: Database | None, transit: Transit | None,
              reserved: Iterable[str]) -> tuple[Policy, ...]:
    reserved_names = set(reserved)
    policies: dict[str, Policy] = {}
    kv_paths = {secret.path for secret in kv.secrets}
    for node in root.children("policies"):
        name = node.string("name", rule=VAULT_NAME)
        if name in reserved_names or name.startswith(APP_POLICY_PREFIX) or name in ("root", "default"):
            raise node.error("name", f"{name!r} is reserved (built-in, hand-written in policies/acl, or "
                             f"the {APP_POLICY_PREFIX}<app> policies generated per application)",
                             "choose another name")
        path_rules = []
        for rule_node in node.children("rules"):
            path = rule_node.string("path")
            capabilities = rule_node.strings("capabilities")
            for index, capability in enumerate(capabilities):
                if capability not in CAPABILITIES:
                    raise rule_node.error(f"capabilities[{index}]", f"{capability!r} is not a Vault "
                                          "capability", f"use some of {', '.join(CAPABILITIES)}")
                if capability == "sudo":
                    raise rule_node.error(f"capabilities[{index}]", "sudo is for the platform admin policy only",
                                          "grant the capabilities the holder needs without sudo")
            if not capabilities:
                raise rule_node.error("capabilities", "is empty", "list at least one capability")
            if rules.grants_whole_mount(path):
                raise rule_node.error("path", f"{path!r} grants a whole mount or all of its secret material",
                                      "grant the exact paths the holder needs")
            _check_policy_path(rule_node, path, kv, kv_paths, database, transit)
            path_rules.append(PolicyRule(path=path, capabilities=tuple(dict.fromkeys(capabilities))))
            rule_node.done()
        if not path_rules:
            raise node.error("rules", "is empty", "give the policy at least one path rule")
        refuse_duplicate(node, "name", name, policies, "policy")
        policies[name] = Policy(name=name, rules=tuple(path_rules))
        node.done()
    return tuple(sorted(policies.values(), key=lambda p: p.name))


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
                raise node.error("path", f"{path!r} refers to KV path {target!r}, which is not declared",
                                 f"declare it under kv.secrets, or fix the path ({declared(kv_paths)})")
    if database is not None:
        creds_prefix = f"{database.mount}/creds/"
        if path.startswith(creds_prefix):
            role = path[len(creds_prefix):]
            if not _matches(role, database.role.keys()):
                raise node.error("path", f"{path!r} refers to database role {role!r}, which is not "
                                 "declared", f"declare it under database.roles ({declared(database.role)})")
        static_prefix = f"{database.mount}/static-creds/"
        if path.startswith(static_prefix):
            role = path[len(static_prefix):]
            if not _matches(role, database.static_role.keys()):
                raise node.error("path", f"{path!r} refers to static database role {role!r}, which is not "
                                 "declared",
                                 f"declare it under database.staticRoles ({declared(database.static_role)})")
    if transit is not None:
        operation, _, key = path.removeprefix(f"{transit.mount}/").partition("/")
        if (path.startswith(f"{transit.mount}/") and operation in TRANSIT_KEY_PATHS and key
                and not _matches(key, transit.key.keys())):
            raise node.error("path", f"{path!r} refers to transit key {key!r}, which is not declared",
                             f"declare it under transit.keys ({declared(transit.key)})")


def _apps(root: Node, kv: Kv, database: Database | None, policies: tuple[Policy, ...],
          default_audience: str, transit: Transit | None = None, pki: Pki | None = None) -> tuple[App, ...]:
    kv_paths = {secret.path for secret in kv.secrets}
    role_names = {role.name for role in database.roles} if database else set()
    policy_names = {policy.name for policy in policies}
    apps: dict[str, App] = {}
    for node in root.children("apps"):
        for key in ("namespace", "serviceAccount"):
            value = node.raw(key)
            if isinstance(value, str) and (problem := rules.wildcard_binding(key, value)) is not None:
                raise node.error(key, problem, f"bind the application's own {key}")
        app = App(
            name=node.string("name", rule=K8S_LABEL),
            namespace=node.string("namespace", rule=K8S_LABEL),
            service_account=node.string("serviceAccount", rule=K8S_SUBDOMAIN),
            token_ttl=node.duration("tokenTtl", HOUR),
            token_max_ttl=node.duration("tokenMaxTtl", 4 * HOUR),
            kv_paths=node.strings("kvPaths", rule=KV_PATH),
            database_role=node.optional_string("databaseRole", rule=VAULT_NAME),
            policies=node.strings("policies", rule=VAULT_NAME),
            audience=node.string("audience", default_audience, rule=AUDIENCE),
            **_app_access(node, transit, pki, database),
        )
        check_ttl_order(node, "tokenTtl", app.token_ttl, "tokenMaxTtl", app.token_max_ttl)
        check_ttl_cap(node, "tokenTtl", app.token_ttl, rules.TOKEN_TTL_CAP)
        check_ttl_cap(node, "tokenMaxTtl", app.token_max_ttl, rules.TOKEN_MAX_TTL_CAP)
        for index, path in enumerate(app.kv_paths):
            if path not in kv_paths:
                raise node.error(f"kvPaths[{index}]", f"KV path {path!r} is not declared",
                                 f"declare it under kv.secrets ({declared(kv_paths)})")
        if app.database_role is not None and app.database_role not in role_names:
            raise node.error("databaseRole", f"database role {app.database_role!r} is not declared",
                             f"declare it under database.roles ({declared(role_names)})")
        for index, policy in enumerate(app.policies):
            if policy not in policy_names:
                raise node.error(f"policies[{index}]", f"policy {policy!r} is not declared",
                                 f"declare it under policies ({declared(policy_names)})")
        refuse_duplicate(node, "name", app.name, apps, "application")
        apps[app.name] = app
        node.done()
    return tuple(sorted(apps.values(), key=lambda a: a.name))


def _app_access(node: Node, transit: Transit | None, pki: Pki | None,
                database: Database | None) -> dict[str, Any]:
    """The application's transit keys, certificate and static database role (see ``sections``)."""
    access = sections.load_app_access(node, transit, pki, database)
    return {"transit": access.transit, "certificate": access.certificate,
            "static_database_role": access.static_database_role}


def _vault_access(stack: str, config: Mapping[str, Any], secret_keys: Set[str]) -> VaultAccess | None:
    token_key = "vault:token"
    if config.get(token_key) is None:
        return None
    if token_key not in secret_keys:
        raise SpecError(stack, token_key, "holds a plaintext value where a secret is required",
                        f"run `pulumi config set --secret {token_key} <token>`")
    address = config.get("vault:address")
    if not isinstance(address, str) or not re.fullmatch(r"https?://[^\s/]+(:\d+)?/?", address):
        raise SpecError(stack, "vault:address", f"{address!r} is not a Vault address" if address else
                        "is required once vault:token is set", "run `pulumi config set vault:address "
                        "https://<host>:8200`")
    ca_cert_file = config.get("vault:caCertFile")
    return VaultAccess(address=address, token_key=token_key,
                       ca_cert_file=ca_cert_file if isinstance(ca_cert_file, str) else None)


def _known(node: Node, key: str, names: Mapping[str, object], what: str) -> str:
    value = node.string(key, rule=VAULT_NAME)
    if value not in names:
        raise node.error(key, f"{what} {value!r} is not declared",
                         f"declare it, or use a declared one ({declared(names)})")
    return value




def _matches(pattern: str, names: Set[str]) -> bool:
    """``pattern`` names a declared item; a glob (``*``, ``+``) must match at least one.

    The exact case is a set lookup, so checking every policy of hundreds of apps stays linear.
    """
    if "*" not in pattern and "+" not in pattern:
        return pattern in names
    glob = pattern.replace("+", "*")
    return any(fnmatch.fnmatchcase(name, glob) for name in names)


