"""What one run of the program declared (:mod:`platformctl.adapters.engine` records it): the resources with
their inputs, secrets still marked as the engine receives them, the stack outputs and the warnings;
the views of a value with its secrets masked or unwrapped, and the access matrix of what it declares.
Pure: the record and functions of it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc

from vaultmodel.access import AccessMatrix, access_matrix

SECRET_SIG_KEY = rpc._special_sig_key
SECRET_SIG = rpc._special_secret_sig
SECRET_MASK = "[secret]"
UNKNOWN_MARK = "[known after apply]"


@dataclass(frozen=True)
class DeclaredResource:
    """One resource as the engine received it."""

    type: str
    """Type token, e.g. ``vault:index/mount:Mount``."""
    name: str
    """Logical name."""
    urn: str
    """URN, unique in the stack."""
    inputs: Mapping[str, Any]
    """Inputs as sent: camelCase keys, secrets as ``{SECRET_SIG marker: ..., "value": ...}``."""
    custom: bool
    """False for component resources."""
    parent: str
    """Parent URN ("" for the stack's direct children)."""
    provider: str
    """Provider reference ("" for the default provider)."""
    protect: bool
    """Protected from deletion."""
    aliases: tuple[str, ...] = field(default=())
    """Former names (alias URNs) the resource keeps its identity from."""
    dependencies: tuple[str, ...] = field(default=())
    """URNs of the resources it waits for (``depends_on``, components expanded to their children)."""
    delete_before_replace: bool = False
    """Replaced by deleting it first, then creating the new one (Pulumi's default is the other way)."""


@dataclass(frozen=True)
class Declaration:
    """What one run of the program declared, or the error that stopped it."""

    stack: str
    """Stack name."""
    resources: tuple[DeclaredResource, ...]
    """Resources in the order they were registered."""
    outputs: Mapping[str, Any]
    """Stack outputs, secrets marked."""
    warnings: tuple[str, ...]
    """Messages the program logged at warning level."""
    error: str | None
    """The program's refusal (a RunError), if any."""
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    """Each stack's plan fingerprint by stack name (:func:`platformctl.core.plan.fingerprint`): the one
    stack's, or the environment's and each of its teams' for the declaration of a whole environment."""

    def of_type(self, type_token: str) -> list[DeclaredResource]:
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str) -> DeclaredResource:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]


def is_secret(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get(SECRET_SIG_KEY) == SECRET_SIG


def masked(value: Any) -> Any:
    """``value`` with every secret replaced by ``[secret]`` and every value only Vault can compute
    (an output of another resource, e.g. a CA's CSR) by ``[known after apply]``, for showing to a
    person or a diff."""
    return _map_secrets(value, lambda secret: SECRET_MASK)


def unwrap(value: Any) -> Any:
    """``value`` with secrets unwrapped, for assertions on what a secret carries."""
    return _map_secrets(value, lambda secret: unwrap(secret["value"]))


def access_of(declaration: Declaration) -> AccessMatrix:
    """Who reaches what among the resources ``declaration`` holds (:func:`vaultmodel.access.access_matrix`),
    from their inputs as a plan document holds them, secrets masked: the form the pull request's diff
    computes its access changes from, so ``platformctl access``, ``plan --app`` and the diff show one
    matrix, and no secret reaches it (names and policies never are)."""
    return access_matrix([(resource.type, masked(resource.inputs)) for resource in declaration.resources])


def _map_secrets(value: Any, on_secret: Callable[[Mapping[str, Any]], Any]) -> Any:
    """``value`` rebuilt with ``on_secret`` applied to each secret and unknowns marked."""
    if is_secret(value):
        return on_secret(value)
    if isinstance(value, pulumi.output.Unknown):
        return UNKNOWN_MARK
    if isinstance(value, Mapping):
        return {key: _map_secrets(item, on_secret) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_map_secrets(item, on_secret) for item in value]
    return value
