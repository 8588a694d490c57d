"""Runs the real program (``__main__.py``) under the real Pulumi SDK with Pulumi's mock engine and
records what it declares: every resource with its inputs (secrets still marked), its options, the
stack outputs and the warnings. Nothing reaches a cluster or a Vault server."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import runpy
from collections.abc import Callable, Iterator, Mapping, Set
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import mocks, rpc
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from environment import PROJECT
from environment.apps import Apps, read_apps
from environment.runtime import GIVEN_APPS
from platformctl.core.declaration import SECRET_SIG, SECRET_SIG_KEY, Declaration, DeclaredResource
from platformctl.core.plan import fingerprint

ROOT = Path(__file__).resolve().parents[2]

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
                       error=next((part.error for part in parts if part.error is not None), None),
                       fingerprints={key: value for part in parts for key, value in part.fingerprints.items()})


def declare_with(program: Callable[[], None], stack: str, config: Mapping[str, Any],
                 secret_keys: Set[str] = frozenset(), apps: Apps | None = None) -> Declaration:
    """Runs ``program`` as the Pulumi program of ``stack``: :func:`declare` with the project's program,
    the benchmarks with a flat one for comparison."""
    return contextvars.Context().run(_declare, program, stack, config, secret_keys, apps)


def _run_main() -> None:
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


@contextmanager
def _without_source_positions() -> Iterator[None]:
    """The SDK walks the Python stack of every resource it registers (``_get_stack_trace`` in the
    SDK's ``pulumi/runtime/resource.py``) for the engine's source positions, a fifth of a plan's time.
    A plan records no position, so, while it runs, each resource gets the empty trace the SDK itself
    sends when it finds no user frame."""
    walk = sdk_resource._get_stack_trace
    sdk_resource._get_stack_trace = source_pb2.StackTrace
    try:
        yield
    finally:
        sdk_resource._get_stack_trace = walk


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
        with _without_source_positions():
            _sync_await(run_pulumi_func(program))
    except pulumi.RunError as refused:
        error = str(refused)
    root = pulumi.runtime.get_root_resource()
    outputs: dict[str, Any] = {}
    if error is None and root is not None:
        outputs = _sync_await(_resolve_all(getattr(root, "outputs", {})))
    declaration = Declaration(stack=stack, resources=tuple(monitor.declared), outputs=outputs,
                              warnings=tuple(warnings.messages), error=error)
    return replace(declaration, fingerprints={stack: fingerprint(declaration)})


async def _resolve_all(values: Mapping[str, Any]) -> dict[str, Any]:
    """The stack outputs' values, secrets marked; awaited together, not one event-loop run each."""
    outputs = [pulumi.Output.from_input(value) for value in values.values()]
    resolved = await asyncio.gather(*(output.future() for output in outputs))
    secret = await asyncio.gather(*(output.is_secret() for output in outputs))
    return {key: {SECRET_SIG_KEY: SECRET_SIG, "value": value} if is_secret_ else value
            for key, value, is_secret_ in zip(values, resolved, secret, strict=True)}
