"""The Vault API calls the IaC token makes (``policies/acl/vault-iac-calls.yaml``), expanded for what a
stack declares and checked against a policy with Vault's ACL rules (:mod:`vaultmodel.vault_acl`).

Pure but for reading the catalogue file; the test suite runs :func:`check` on every committed stack."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vaultmodel import vault_acl

CATALOGUE = Path(__file__).resolve().parents[1] / "policies" / "acl" / "vault-iac-calls.yaml"
PHASES = ("create", "read", "update", "delete")
_PLACEHOLDER = re.compile(r"\{(=?)([A-Za-z_]+)\}")
COMPUTED = "computed-"
"""What stands, in an expanded path, for a value Vault computes (``{=id}``: ``computed-id``)."""


@dataclass(frozen=True)
class Call:
    """One request the IaC token makes, and what needs it."""

    capabilities: tuple[str, ...]
    """Every capability Vault checks for it."""
    path: str
    """The API path, placeholders filled."""
    needed_by: str
    """``<resource name> (<type>) <phase>``, or the command."""


@dataclass(frozen=True)
class Report:
    """A policy against the calls."""

    denied: tuple[str, ...]
    """``<what needs it>: <capability> on <path>`` for each call the policy refuses."""
    unused: tuple[tuple[str, str], ...]
    """(rule path, capability) the policy grants that no call uses."""


class MissingFromCatalogue(Exception):
    """A declared resource type has no entry in the catalogue."""


@functools.cache
def catalogue(path: Path = CATALOGUE) -> dict[str, Any]:
    """The catalogue file, parsed (once)."""
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def _parse(call: str, inputs: Mapping[str, Any], what: str) -> tuple[tuple[str, ...], str]:
    capabilities, _, template = call.partition(" ")

    def fill(match: re.Match[str]) -> str:
        computed, name = match.groups()
        if computed:
            return f"{COMPUTED}{name.replace('_', '-')}"
        value = inputs.get(name)
        if not isinstance(value, str) or not value:
            raise MissingFromCatalogue(f"{what}: the catalogue's path {template!r} needs input {name!r}, "
                                       "which the resource does not set")
        return value

    return tuple(capabilities.split(",")), _PLACEHOLDER.sub(fill, template)


def calls(resources: Iterable[tuple[str, str, Mapping[str, Any]]], commands: bool = True) -> tuple[Call, ...]:
    """Every call the IaC token makes for ``resources`` ((name, type, inputs) of a stack's declared
    resources) over their lifetime, and (``commands``) the platformctl commands' own. Raises
    :class:`MissingFromCatalogue` naming a Vault resource type the catalogue does not cover."""
    entries = catalogue()
    found = []
    for name, type_token, inputs in resources:
        if not (type_token.startswith("vault:") or type_token == "pulumi:providers:vault"):
            continue
        entry = entries["resources"].get(type_token) or entries["provider"].get(type_token)
        if entry is None:
            raise MissingFromCatalogue(
                f"resource type {type_token!r} ({name}) is declared but not in {CATALOGUE.name}: add the Vault "
                "API calls the provider makes to create, read, update and delete it, from "
                "hashicorp/terraform-provider-vault's vault/resource_*.go")
        for phase in PHASES:
            for call in entry.get(phase, ()):
                what = f"{name} ({type_token}) {phase}"
                capabilities, path = _parse(call, inputs, what)
                found.append(Call(capabilities, path, what))
    if commands:
        for command, entry in entries["commands"].items():
            for call in entry["run"]:
                capabilities, path = _parse(call, {}, command)
                found.append(Call(capabilities, path, command))
    return tuple(found)


def check(policy: str, rules: Sequence[vault_acl.Rule], needed: Iterable[Call]) -> Report:
    """Which of the ``needed`` calls a token holding ``policy`` (and Vault's default policy, which
    ``vault token create -policy=...`` attaches) may not make, and what ``policy`` grants that none uses."""
    acl = vault_acl.Acl({policy: rules, vault_acl.DEFAULT_POLICY_NAME: vault_acl.default_rules()})
    used: set[tuple[str, str]] = set()
    denied = []
    for call in needed:
        for capability in call.capabilities:
            grant = acl.grant(call.path, listing=capability == "list")
            if capability in grant.capabilities:
                if policy in grant.policies:
                    used.add((grant.pattern, capability))
            else:
                denied.append(f"{call.needed_by}: {capability} on {call.path}")
    granted = [(rule.path, capability) for rule in rules for capability in rule.capabilities]
    return Report(tuple(dict.fromkeys(denied)), tuple(g for g in granted if g not in used))
