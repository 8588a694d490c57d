"""The ACL policies a stack stands for (``sys/policies/acl/:name``): the ones its config declares (the
``policies`` section, whose paths may reach only what the stack declares: :func:`data_plane`), the
policy generated for each application (its rules, derived from the spec), and the hand-written files
in ``policies/acl/`` (names and text), which a declared policy may not overwrite. Rendering to HCL and
uploading are the renderer's and the components' (:mod:`render.acl`)."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from pathlib import Path

from vaultmodel import rules

from . import operations
from ._reader import VAULT_NAME, Node, collecting, declared, matches, name_of, refuse_duplicate, report, stop_if_refused
from .apps import PROJECT_ROOT, AppNode
from .kv import undeclared_kv_path
from .model import App, Database, EnvironmentSpec, Kv, Pki, Policy, PolicyRule, Transit

APP_POLICY_PREFIX = "app-"
CAPABILITIES = ("create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe", "recover")
POLICY_DIR = PROJECT_ROOT / "policies" / "acl"


@dataclass(frozen=True)
class PolicyDocument:
    """An ACL policy ready to upload."""

    name: str
    """Policy name in Vault."""
    hcl: str
    """The policy text."""


def app_policy_name(app: App) -> str:
    return f"{APP_POLICY_PREFIX}{app.name}"


def app_policy_rules(app: App, spec: EnvironmentSpec) -> tuple[PolicyRule, ...]:
    """Least privilege for ``app``: read its KV secrets' data (not their metadata, which the agent never
    reads) and its database credentials (dynamic and static), ``update`` on exactly the transit
    operations it declares per key, and issuing from its PKI role; nothing else. Sorted by path, so the
    HCL is the same for the same spec."""
    path_rules = []
    for path in app.kv_paths:
        path_rules.append(PolicyRule(path=f"{spec.kv.mount}/data/{path}", capabilities=("read",)))
    if app.database_role is not None and spec.database is not None:
        path_rules.append(PolicyRule(path=f"{spec.database.mount}/creds/{app.database_role}", capabilities=("read",)))
    if app.static_database_role is not None and spec.database is not None:
        path_rules.append(PolicyRule(path=f"{spec.database.mount}/static-creds/{app.static_database_role}",
                                capabilities=("read",)))
    if spec.transit is not None:
        for grant in app.transit:
            path_rules += [PolicyRule(path=f"{spec.transit.mount}/{operation}/{grant.key}", capabilities=("update",))
                      for operation in grant.operations]
    if app.certificate is not None and spec.pki is not None:
        path_rules.append(PolicyRule(path=f"{spec.pki.intermediate.mount}/issue/{app.certificate.role}",
                                capabilities=("update",)))
    return tuple(sorted(path_rules, key=lambda rule: rule.path))


@functools.cache
def load_policy_files(directory: Path = POLICY_DIR) -> tuple[PolicyDocument, ...]:
    """Every ``<name>.hcl`` in ``directory`` as policy ``<name>``, sorted by name: only names and text.

    Not parsed here: the program uploads the text as it is, and parsing is the slowest part of a small
    stack's run. The tests parse every file (:func:`render.acl.parse_policy`), and the
    guardrails parse every policy a preview or an update would upload, so a broken file is refused
    before it reaches Vault.
    """
    return tuple(PolicyDocument(file.stem, file.read_text()) for file in sorted(directory.glob("*.hcl")))



def check_generated_policies(nodes: Mapping[str, AppNode], spec: EnvironmentSpec, plane: rules.DataPlane) -> None:
    """Each application's generated policy reaches only the data plane, by the rule declared ones follow."""
    for app in spec.apps:
        for rule in app_policy_rules(app, spec):
            refusal = rules.data_plane_refusal(app_policy_name(app), rule.path, rule.capabilities, plane)
            if refusal is not None:
                report(nodes[app.name].error(None, f"application {app.name!r}: {refusal.problem}", refusal.fix))
    stop_if_refused()


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


def load_policies(root: Node, kv: Kv, database: Database | None, transit: Transit | None, plane: rules.DataPlane,
                  reserved: Iterable[str]) -> tuple[Policy, ...]:
    reserved_names = set(reserved)
    policies: dict[str, Policy] = {}
    for node in root.children("policies"):
        with collecting(broken=f"policies:{name_of(node)}"):
            policy = _policy(node, kv, database, transit, plane, reserved_names)
            refuse_duplicate(node, "name", policy.name, policies, "policy")
            policies[policy.name] = policy
    return tuple(sorted(policies.values(), key=lambda p: p.name))


def _policy(node: Node, kv: Kv, database: Database | None, transit: Transit | None,
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
            _check_policy_path(rule_node, path, kv, plane.kv_secrets, database, transit)
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


def _check_policy_path(node: Node, path: str, kv: Kv, kv_paths: Set[str], database: Database | None,
                       transit: Transit | None) -> None:
    """A path into the KV or database mount must name something the spec declares."""
    if not re.fullmatch(r"[A-Za-z0-9_+*/.-]+", path) or path.startswith("/"):
        raise node.error("path", f"{path!r} is not a Vault API path",
                         "write it like secret/data/<prefix>/<name>, without a leading '/'")
    for area in ("data", "metadata"):
        kv_prefix = f"{kv.mount}/{area}/"
        if path.startswith(kv_prefix):
            target = path[len(kv_prefix):]
            if not matches(target, kv_paths):
                what, why, fix, meant = undeclared_kv_path(target, kv, kv_paths)
                raise node.error("path", f"{path!r} refers to {what}, which {why}", fix,
                                 edit=f"{kv_prefix}{meant}" if meant else None, refers_to=f"kv.secrets:{target}")
    if database is not None:
        creds_prefix = f"{database.mount}/creds/"
        if path.startswith(creds_prefix):
            role = path[len(creds_prefix):]
            if not matches(role, database.role.keys()):
                raise node.error("path", f"{path!r} refers to database role {role!r}, which is not "
                                 "declared", f"declare it under database.roles ({declared(database.role)})",
                                 refers_to=f"database.roles:{role}")
        static_prefix = f"{database.mount}/static-creds/"
        if path.startswith(static_prefix):
            role = path[len(static_prefix):]
            if not matches(role, database.static_role.keys()):
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
        if path.startswith(f"{transit.mount}/") and names_key and key and not matches(key, transit.key.keys()):
            raise node.error("path", f"{path!r} refers to transit key {key!r}, which is not declared",
                             f"declare it under transit.keys ({declared(transit.key)})",
                             refers_to=f"transit.keys:{key}")
