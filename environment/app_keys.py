"""What each application's keys say in a stack (its file's, as that stack reads them): its Kubernetes
auth role, what it reads and the policies it holds, checked against what the stack declares.

Called by :func:`environment.loader.load_spec`; every refusal is a :class:`SpecError` that names the
key where it is written (``apps/<team>/<app>.yaml:<key>``).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any

from vaultmodel import rules
from vaultmodel.durations import HOUR, format_duration

from . import operations, sections
from ._reader import (
    AUDIENCE,
    K8S_LABEL,
    K8S_SUBDOMAIN,
    KV_PATH,
    VAULT_NAME,
    Node,
    SpecError,
    check_min_ttl,
    check_ttl_cap,
    check_ttl_order,
    collecting,
    declared,
    report,
)
from .apps import AppNode, Origins
from .kv import undeclared_kv_path
from .model import App, Database, DatabaseRole, Kv, Pki, Policy, Transit

DEFAULT_TOKEN_MAX_TTL = 4 * HOUR


def load_apps(app_nodes: list[AppNode], kv: Kv, database: Database | None, plane: rules.DataPlane,
              policies: Mapping[str, Policy], default_audience: str, transit: Transit | None, pki: Pki | None,
              origins: Origins) -> tuple[App, ...]:
    """The stack's applications, each checked against what the stack declares: ``plane`` (the declared KV
    paths), ``database`` (its roles by name) and ``policies`` (the declared ones, by name)."""
    apps = []
    for node in app_nodes:
        with collecting():
            app = _app(node, kv, plane.kv_secrets, database, database.role if database else {}, policies,
                       default_audience, transit, pki, origins)
            _check_team_reach(node, app, origins)
            apps.append(app)
    return tuple(sorted(apps, key=lambda a: a.name))


def _app(node: AppNode, kv: Kv, kv_paths: Set[str], database: Database | None,
         role_names: Mapping[str, DatabaseRole], policy_names: Mapping[str, Policy], default_audience: str,
         transit: Transit | None,
         pki: Pki | None, origins: Origins) -> App:
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
            what, why, fix, meant = undeclared_kv_path(path, kv, kv_paths)
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


def _check_team_reach(node: AppNode, app: App, origins: Origins) -> None:
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


def _check_lease_within_token(node: Node, app: App, role: DatabaseRole, origins: Origins) -> None:
    """Refuses a database role whose credentials would be renewed for longer than the application's
    tokens live: a lease belongs to the token that created it, and Vault revokes it (drops the
    database user, ending its sessions) when that token expires, whatever the role's maxTtl says."""
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
