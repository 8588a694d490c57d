"""The ACL policies a stack stands for besides the ones its config declares (``sys/policies/acl/:name``):
the policy generated for each application (its rules, derived from the spec), and the hand-written
files in ``policies/acl/`` (names and text), which a declared policy may not overwrite. Rendering to
HCL and uploading are the renderer's and the components' (:mod:`render.acl`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from .apps import PROJECT_ROOT
from .model import App, EnvironmentSpec, PolicyRule

APP_POLICY_PREFIX = "app-"
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
