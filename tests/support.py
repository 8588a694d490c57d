"""Helpers the test modules share: the stacks the tests run, edited copies of them, and runs of the
real program under Pulumi's mock engine.

Two kinds of stack:

- the test stacks under ``tests/stacks/`` with the test applications under ``tests/apps/``
  (``STACKS``): the exact shapes tests assert (one auth role, its TTLs, the SQL of its database
  role...) are pinned on these, and :func:`edited`, :func:`spec_of` and :func:`declare_stack` read them;
- the committed stacks under ``stacks/`` with the applications under ``apps/``, and each stack with
  an application onboarded with every kind of access (``ANY_STACK``): the platform team and the
  application teams edit these every week, so tests over them assert only what holds for every
  resource of each kind in any valid stack.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from environment import Cluster, EnvironmentSpec, SpecError, StackRefused, load_policy_files, load_spec
from environment._reader import FILE_KEY_PREFIX, REMOVE, label_of
from environment.apps import Apps, read_apps
from platformctl.adapters.engine import ROOT, declare
from platformctl.adapters.stackfile import as_first_up, read_stack, stack_config, stack_file, stacks
from platformctl.core.declaration import Declaration
from platformctl.core.stack_config import StackConfig

TEST_STACKS = ROOT / "tests"
"""Root whose ``stacks/`` and ``apps/`` directories hold the test stacks and the test applications."""
STACKS = ("dev", "staging", "prod")
"""The test stacks, one per tier."""
COMMITTED = tuple(stacks())
"""The committed stacks (``stacks/Pulumi.<name>.yaml``), whatever they are this week."""
API_SERVICE = f"{FILE_KEY_PREFIX}payments/api-service.yaml:"
"""The test application every test stack has, as its keys start: ``apps/payments/api-service.yaml:tokenTtl``."""
ONBOARDED = "+onboarded"
"""Suffix of a committed stack's name with :data:`ONBOARDED_APP` onboarded."""
ANY_STACK = (*COMMITTED, *(f"{stack}{ONBOARDED}" for stack in COMMITTED))
"""What the stack-level properties are asserted on: every committed stack, and a copy of each with
an application onboarded."""
_SEGMENT = re.compile(r"([^.\[\]]+)|\[([^\[\]]+)\]")
_P = "vault-platform:"


ORDERS = "apps/orders/orders-api.yaml:"
# A team's application (the orders team's) with its own secret and database role, in prod only.
ORDERS_FILE = {
    "namespace": "orders", "serviceAccount": "orders-api", "kvPaths": ["production/orders-api"],
    "databaseRole": "orders-api-reader",
    "secrets": {"orders-api": {"data": {"token": {"random": {"length": 32}}}}},
    "databaseRoles": [{"name": "orders-api-reader", "connection": "postgres",
                       "grants": [{"privileges": ["SELECT"], "schema": "orders_api"}]}],
    "environments": {"prod": None},
}

def any_stack(name: str, *, configured: bool = True, root: Path = ROOT) -> StackConfig:
    """A member of :data:`ANY_STACK`: a committed stack, or (``<stack>+onboarded``) a copy of it with
    an application onboarded; with ``root=TEST_STACKS``, a test stack (with the application)."""
    stack, _, onboarded = name.partition("+")
    document = yaml.safe_load(stack_file(stack, root).read_text()) or {}
    apps = read_apps(root)
    if onboarded:
        document, apps = onboard(document, apps, spec_of_config(stack_config(stack, document, apps)))
    config = stack_config(stack, document, apps)
    return config if configured else as_first_up(config)


ONBOARDING_TEAM = "orders"
"""The team folder :func:`onboard` writes its application in."""


def onboarded_app(spec: EnvironmentSpec, apps: Apps) -> str:
    """The name :func:`onboard` gives the new application: ``orders-api``, or the first of
    ``orders-api-2``, ``orders-api-3``... whose names are all free in ``spec`` and ``apps``."""
    taken = {app.name for app in spec.apps} | {secret.name for secret in spec.kv.secrets}
    taken |= {file.name for file in apps.files}
    if spec.database is not None:
        taken |= {role.name for role in spec.database.roles} | {role.name for role in spec.database.static_roles}
    taken |= {key.name for key in spec.transit.keys} if spec.transit else set()
    taken |= {role.name for role in spec.pki.roles} if spec.pki else set()
    for number in range(1, len(taken) + 2):
        name = "orders-api" if number == 1 else f"orders-api-{number}"
        if not {name, f"{name}-reader", f"{name}-reporting", f"{name}-data"} & taken:
            return name
    raise AssertionError("unreachable: one of len(taken) + 1 candidates is free")


def onboard(document: Mapping[str, Any], apps: Apps, spec: EnvironmentSpec) -> tuple[dict[str, Any], Apps]:
    """The stack file ``document`` and the application files ``apps`` (whose spec is ``spec``) with one
    more application, given every kind of access the stack can offer, as a team and the platform
    team would write it: in the team's file, a KV secret from a new stack secret and a read-only
    dynamic database role on a schema of its own; in the stack file, a static role, a transit key and
    a PKI role of its own (when the stack has PKI)."""
    name = onboarded_app(spec, apps)
    snake = name.replace("-", "_")
    onboarded: dict[str, Any] = copy.deepcopy(dict(document))
    config = onboarded.setdefault("config", {})
    secret_key = "".join(word.capitalize() if i else word for i, word in enumerate(name.split("-"))) + "Token"
    app: dict[str, Any] = {"namespace": "orders", "serviceAccount": name, "tokenTtl": "15m",
                           "secrets": {name: {"data": {"api_token": {"fromSecret": secret_key}}}},
                           "kvPaths": [f"{spec.kv.path_prefix}/{name}"]}
    if spec.database is not None and spec.database.connections:
        connection = spec.database.connections[0].name
        app["databaseRoles"] = [{
            "name": f"{name}-reader", "connection": connection, "defaultTtl": "15m", "maxTtl": "1h",
            "grants": [{"privileges": ["SELECT"], "schema": snake}]}]
        config[f"{_P}database"].setdefault("staticRoles", []).append({
            "name": f"{name}-reporting", "connection": connection, "username": f"{snake}_reporting"})
        app |= {"databaseRole": f"{name}-reader", "staticDatabaseRole": f"{name}-reporting"}
    transit = config.get(f"{_P}transit") or {}
    transit.setdefault("keys", []).append({"name": f"{name}-data", "type": "aes256-gcm96"})
    config[f"{_P}transit"] = transit
    app["transitKeys"] = [{"key": f"{name}-data", "operations": ["encrypt", "decrypt"]}]
    if spec.pki is not None:
        service = f"{name}.{app['namespace']}.svc"
        config[f"{_P}pki"].setdefault("roles", []).append({
            "name": name, "allowedDomains": [service, f"{service}.cluster.local"],
            "allowBareDomains": True, "ttl": "24h", "maxTtl": "72h", "serverFlag": True})
        app["certificate"] = {"role": name, "commonName": service}
    app["environments"] = {spec.stack: None}
    return onboarded, with_files(apps, {f"{FILE_KEY_PREFIX}{ONBOARDING_TEAM}/{name}.yaml:": app})


def with_files(apps: Apps, changes: Mapping[str, Any]) -> Apps:
    """``apps`` with ``changes`` to its files, read back by the project's loader from a scratch copy.

    A change's key is ``apps/<team>/<app>.yaml:`` (the whole file: a document, a ``str`` written as
    it is, or ``DELETE``) or ``apps/<team>/<app>.yaml:<--path-style key in it>``."""
    documents: dict[str, Any] = {file.path: copy.deepcopy(dict(file.document)) for file in apps.files}
    for key, value in changes.items():
        path, _, inner = key.partition(":")
        if not inner and value is DELETE:
            documents.pop(path)
        elif not inner:
            documents[path] = copy.deepcopy(value)
        else:
            documents.setdefault(path, {})
            _set_in(documents, [path, *_steps(inner)], value if value is DELETE else copy.deepcopy(value))
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "stacks").mkdir()
        for environment in apps.environments:
            (root / "stacks" / f"Pulumi.{environment}.yaml").write_text("config: {}\n")
        for path, document in documents.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            text = document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False)
            (root / path).write_text(text)
        return read_apps(root)


def app_document(key: str) -> dict[str, Any]:
    """The document of the test application file whose keys start with ``key`` (:data:`API_SERVICE`)."""
    return dict(yaml.safe_load((TEST_STACKS / key.rstrip(":")).read_text()))


def deployed_cluster(stack: str) -> Cluster:
    """The cluster the member ``stack`` of :data:`ANY_STACK` deploys; skips the test for a stack whose
    Vault is external (``vault-platform:externalVault``), which hands nothing to the chart."""
    cluster = spec_of_config(any_stack(stack)).cluster
    if cluster is None:
        pytest.skip(f"{stack}: its Vault is external, this stack deploys no Vault server")
    return cluster


def spec_of_config(stack: StackConfig) -> EnvironmentSpec:
    reserved = [document.name for document in load_policy_files()]
    return load_spec(stack.stack, stack.config, stack.secret_keys, reserved, apps=stack.apps)


def declare_config(stack: StackConfig) -> Declaration:
    """What ``stack`` declares: a copy of the one run of the program per distinct stack name, config,
    secret keys, application files and environment variables in this test session (a run is about
    0.1 s of CPU, and many tests assert on the same stack). A test that changes anything else the
    program reads (patches a component) calls ``platformctl.adapters.engine.declare`` itself."""
    environment = sorted((name, value) for name, value in os.environ.items() if name != "PYTEST_CURRENT_TEST")
    files = [(file.path, file.document) for file in stack.apps.files]
    key = json.dumps([stack.stack, stack.config, sorted(stack.secret_keys), files, sorted(stack.apps.environments),
                      [problem.key for problem in stack.apps.problems], environment], sort_keys=True, default=str)
    if key not in _DECLARED:
        _DECLARED[key] = declare(stack.stack, stack.config, stack.secret_keys, stack.apps)
    return copy.deepcopy(_DECLARED[key])


_DECLARED: dict[str, Declaration] = {}


def edited(stack: str, changes: Mapping[str, Any] | None = None, *, configured: bool = True,
           secret_keys: set[str] | None = None) -> StackConfig:
    """The test stack's config and application files with ``changes`` applied; without
    ``configured``, as on a new environment's first ``pulumi up`` (no Vault login, ``clusterOnly``
    stated).

    A change's key is a full config key with an optional ``--path``-style tail
    (``vault-platform:cluster.replicas``, ``vault-platform:policies[0].name``), or a key of an
    application's file (``apps/payments/api-service.yaml:environments.prod.tokenTtl``; see
    :func:`with_files`); the value ``DELETE`` removes the key. ``secret_keys`` replaces the set of
    keys stored as secrets.
    """
    base = read_stack(stack, TEST_STACKS)
    base = base if configured else as_first_up(base)
    config = copy.deepcopy(dict(base.config))
    file_changes = {}
    for path, value in (changes or {}).items():
        if path.startswith(FILE_KEY_PREFIX):
            file_changes[path] = value
        else:
            _set_path(config, path, value)
    keys = frozenset(secret_keys) if secret_keys is not None else base.secret_keys
    apps = with_files(base.apps, file_changes) if file_changes else base.apps
    return dataclasses.replace(base, config=config, secret_keys=keys, stored_secrets=base.stored_secrets & keys,
                               apps=apps)


def spec_of(stack: str, changes: Mapping[str, Any] | None = None, **kwargs: Any) -> EnvironmentSpec:
    """The spec of the test stack ``stack`` with ``changes`` (see :func:`edited`)."""
    return spec_of_config(edited(stack, changes, **kwargs))


def refusal(stack: str, changes: Mapping[str, Any] | None, key: str, **kwargs: Any) -> SpecError:
    """The problem reported at ``key`` when the edited stack is refused (``key`` may name list items
    by index, as in ``changes``: ``policies[0]`` is matched as the spec names it, ``policies[api-secrets]``)."""
    edit = edited(stack, changes, **kwargs)
    with pytest.raises(StackRefused) as refused:
        spec_of_config(edit)
    wanted = labelled(edit, key)
    found = [problem for problem in refused.value.problems if problem.key == wanted]
    assert found, f"no problem at {wanted!r} in: {refused.value}"
    return found[0]


def labelled(stack: StackConfig, key: str) -> str:
    """``key`` with each list index replaced by the item's name, as the spec's messages write it."""
    namespace, _, rest = key.partition(":")
    documents = {file.path: file.document for file in stack.apps.files}
    node: Any = documents.get(namespace, stack.config)
    out = f"{namespace}:"
    for position, (name, index) in enumerate(_SEGMENT.findall(rest)):
        if name:
            out += ("." if position else "") + name
            lookup = f"{namespace}:{name}" if position == 0 and namespace not in documents else name
            node = node.get(lookup) if isinstance(node, Mapping) else None
        else:
            items = node if isinstance(node, list) else []
            item = items[int(index)] if int(index) < len(items) else None
            label = label_of(item)
            seen = [label_of(other) for other in items[:int(index)]]
            out += f"[{label if label is not None and label not in seen else index}]"
            node = item
    return out


def apply_edits(stack: str, changes: Mapping[str, Any] | None, edits: tuple[tuple[str, Any], ...]) -> StackConfig:
    """The edited stack with a refusal's machine-readable fix applied on top."""
    config = edited(stack, changes)
    applied = copy.deepcopy(dict(config.config))
    file_edits = {}
    for key, value in edits:
        if key.startswith(FILE_KEY_PREFIX):
            file_edits[key] = DELETE if value is REMOVE else value
        else:
            _set_path(applied, key, DELETE if value is REMOVE else value)
    apps = with_files(config.apps, file_edits) if file_edits else config.apps
    return dataclasses.replace(config, config=applied, apps=apps)


def declare_stack(stack: str, changes: Mapping[str, Any] | None = None, **kwargs: Any) -> Declaration:
    """What the test stack ``stack`` with ``changes`` (see :func:`edited`) declares."""
    return declare_config(edited(stack, changes, **kwargs))


def with_kubernetes_role(plan: Mapping[str, Any], name: str, policies: list[str]) -> dict[str, Any]:
    """A copy of a plan document of the test stack ``access`` with one more Kubernetes auth role
    ``name`` (api-service's, renamed), bound to ``<name>/<name>-sa`` and holding ``policies``: a new
    identity as the access diff sees it, without running the program again."""
    edited_plan = copy.deepcopy(dict(plan))
    role = copy.deepcopy(edited_plan["resources"]["vault-kubernetes-auth-api-service"])
    role["inputs"] |= {"roleName": name, "boundServiceAccountNamespaces": [name],
                       "boundServiceAccountNames": [f"{name}-sa"], "tokenPolicies": policies}
    edited_plan["resources"][f"vault-kubernetes-auth-{name}"] = role
    return edited_plan


DELETE = object()


def _set_path(config: dict[str, Any], path: str, value: Any) -> None:
    namespace, _, rest = path.partition(":")
    steps = _steps(rest)
    _set_in(config, [f"{namespace}:{steps[0]}", *steps[1:]], value)


def _steps(path: str) -> list[str | int]:
    """``transitKeys[0].key`` -> ``["transitKeys", 0, "key"]``."""
    return [int(index) if index.isdigit() else index or name for name, index in _SEGMENT.findall(path)]


def _set_in(node: Any, keys: list[str | int], value: Any) -> None:
    for step in keys[:-1]:
        if isinstance(node, list):
            node = node[_index_of(node, step)]
        else:
            if node.get(step) is None:
                node[step] = {}
            node = node[step]
    last = keys[-1]
    if isinstance(node, list):
        last = _index_of(node, last)
    if value is DELETE:
        del node[last]
    elif isinstance(node, list) and last == len(node):
        node.append(value)  # "[n]" one past the end adds an item
    else:
        node[last] = value


def _index_of(items: list[Any], step: str | int) -> int:
    """``apps[0]``, or ``apps[api-service]``: the item of that name, as the spec's messages write keys."""
    if isinstance(step, int):
        return step
    return next(index for index, item in enumerate(items) if label_of(item) == step)


def project_files() -> list[str]:
    """This working tree's files, tracked and new but not ignored, by path relative to its root."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode()
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def repository_copy(destination: Path) -> Path:
    """A git repository at ``destination`` holding this working tree's files (tracked and new, not
    ignored) in one commit, sharing ``./venv``: the commands run there exactly as here, on stack
    files a test may edit, and ``HEAD`` is the base a diff compares with."""
    for name in project_files():
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    (destination / "venv").symlink_to(ROOT / "venv")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=destination, check=True, capture_output=True)
    (destination / ".git" / "info" / "exclude").write_text("venv\n")
    commit(destination)
    return destination


def commit(root: Path, message: str = "base") -> None:
    """Commits every file of the repository ``root`` as it is."""
    identity = ["-c", "user.name=tests", "-c", "user.email=tests@localhost", "-c", "commit.gpgsign=false"]
    for command in (["add", "-A"], [*identity, "commit", "-q", "-m", message]):
        subprocess.run(["git", *command], cwd=root, check=True, capture_output=True)
