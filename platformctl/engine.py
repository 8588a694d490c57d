"""Runs the real program (``__main__.py``) under the real Pulumi SDK with Pulumi's mock engine and
records what it declares: every resource with its inputs (secrets still marked), its options, the
stack outputs and the warnings. Nothing reaches a cluster or a Vault server."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import runpy
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import mocks, rpc
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.environment import PROJECT
from components.environment.apps import Apps, read_apps
from components.environment.runtime import GIVEN_APPS

ROOT = Path(__file__).resolve().parents[1]
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

    def of_type(self, type_token: str) -> list[DeclaredResource]:
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str) -> DeclaredResource:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]


GENERATED = "generated-at-deploy"
"""Stands in for values a provider computes (a RandomPassword's result): a secret, shown masked."""


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = GENERATED
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class _RecordingMonitor(mocks.MockMonitor):
    def __init__(self, mocks_: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks_)
        self.declared: list[DeclaredResource] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.declared.append(DeclaredResource(
                type=request.type,
                name=request.name,
                urn=response.urn,
                inputs=_inputs(request.object),
                custom=request.custom,
                parent=request.parent,
                provider=request.provider,
                protect=request.protect,
                aliases=tuple(str(alias) for alias in request.aliases),
                dependencies=tuple(request.dependencies),
                delete_before_replace=request.deleteBeforeReplace,
            ))
        return response


def _inputs(struct: struct_pb2.Struct) -> dict[str, Any]:
    """The inputs as the engine receives them. Unlike ``rpc.deserialize_properties``, a secret stays
    marked where it is (``postgresql.passwordWo``) instead of making its whole property secret, so
    the plan and the diff still show the settings beside it."""
    return {key: value for key, item in struct.items() if (value := _value(item)) is not None}


def _value(item: Any) -> Any:
    if isinstance(item, struct_pb2.Struct):
        if SECRET_SIG_KEY in item and item[SECRET_SIG_KEY] == SECRET_SIG:
            return {SECRET_SIG_KEY: SECRET_SIG, "value": _value(item["value"])}
        if SECRET_SIG_KEY in item:  # an asset, a resource reference or an output value
            return rpc.deserialize_property(item)
        return _inputs(item)
    if isinstance(item, struct_pb2.ListValue):
        return [_value(element) for element in item]
    return rpc.deserialize_property(item)


class _WarningCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def declare(stack: str, config: Mapping[str, Any], secret_keys: Set[str] = frozenset(),
            apps: Apps | None = None) -> Declaration:
    """Runs the program for ``stack`` with ``config`` (full keys; objects as Python values) and the
    application files ``apps`` (``None``: the program reads the project's, as under the CLI)."""
    return declare_with(_run_main, stack, config, secret_keys, apps)


def declare_environment(stack: str, config: Mapping[str, Any], secret_keys: Set[str] = frozenset(),
                        apps: Apps | None = None) -> Declaration:
    """What an environment declares in all its stacks: :func:`declare` of ``stack``, and, when it states
    ``teamStacks``, of each team's with an application there (``<stack>.<team>``), in one declaration
    (URNs name their stack, so none collide); a refusal is the first stack's."""
    whole = declare(stack, config, secret_keys, apps)
    if whole.error is not None or config.get(f"{PROJECT}:teamStacks") not in (True, "true"):
        return whole
    files = read_apps() if apps is None else apps
    parts = [whole, *(declare(f"{stack}.{team}", config, secret_keys, apps)
                      for team in sorted({app.file.team for app in files.for_stack(stack)}))]
    return Declaration(stack=stack, resources=tuple(r for part in parts for r in part.resources),
                       outputs={key: value for part in parts for key, value in part.outputs.items()},
                       warnings=tuple(w for part in parts for w in part.warnings),
                       error=next((part.error for part in parts if part.error is not None), None))


def declare_with(program: Callable[[], None], stack: str, config: Mapping[str, Any],
                 secret_keys: Set[str] = frozenset(), apps: Apps | None = None) -> Declaration:
    """Runs ``program`` as the Pulumi program of ``stack``: :func:`declare` with the project's program,
    the benchmarks with a flat one for comparison."""
    return contextvars.Context().run(_declare, program, stack, config, secret_keys, apps)


def _run_main() -> None:
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


def _declare(program: Callable[[], None], stack: str, config: Mapping[str, Any], secret_keys: Set[str],
             apps: Apps | None) -> Declaration:
    GIVEN_APPS.set(apps)
    recorder = _Mocks()
    monitor = _RecordingMonitor(recorder)
    logger = logging.getLogger(f"vault-platform.engine.{stack}")
    logger.propagate = False
    warnings = _WarningCollector()
    logger.handlers = [warnings]
    mocks.set_mocks(recorder, project=PROJECT, stack=stack, preview=True, monitor=monitor, logger=logger)
    pulumi.runtime.set_all_config(
        {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()},
        list(secret_keys),
    )
    error = None
    try:
        _sync_await(run_pulumi_func(program))
    except pulumi.RunError as refused:
        error = str(refused)
    root = pulumi.runtime.get_root_resource()
    outputs: dict[str, Any] = {}
    if error is None and root is not None:
        outputs = _sync_await(_resolve_all(getattr(root, "outputs", {})))
    return Declaration(stack=stack, resources=tuple(monitor.declared), outputs=outputs,
                       warnings=tuple(warnings.messages), error=error)


async def _resolve_all(values: Mapping[str, Any]) -> dict[str, Any]:
    """The stack outputs' values, secrets marked; awaited together, not one event-loop run each."""
    outputs = [pulumi.Output.from_input(value) for value in values.values()]
    resolved = await asyncio.gather(*(output.future() for output in outputs))
    secret = await asyncio.gather(*(output.is_secret() for output in outputs))
    return {key: {SECRET_SIG_KEY: SECRET_SIG, "value": value} if is_secret_ else value
            for key, value, is_secret_ in zip(values, resolved, secret, strict=True)}


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
