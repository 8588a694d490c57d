"""Applications, each in a file of its own (``apps/<team>/<app>.yaml``), read for every stack by
:func:`read_apps`: the program, ``bin/plan``, ``platformctl`` and the guardrails pack all call it.

They are not in the stack config because the Pulumi CLI hands the whole stack config to the program,
and to a policy pack, in one environment variable (``PULUMI_CONFIG``), and Linux caps one environment
string at 128 KiB (``MAX_ARG_STRLEN``): at about 200 applications the program could not even start.

A file's name is the application's name, its folder the team that owns it (``.github/CODEOWNERS``).
Its top-level keys hold what is common to every stack; ``environments`` names each stack the
application exists in, each with the keys that differ there (a key written under a stack replaces
the common one whole). Problems with the files themselves (layout, YAML, environments, a name used
twice) are refused by every stack (:func:`read_app_nodes` reports them); what an application's keys say
is checked by each stack it names, with the rest of that stack's spec (:func:`environment.load_spec`).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ._reader import FILE_KEY_PREFIX, K8S_LABEL, Node, SpecError, YamlFileError, follows, parse_yaml_with_lines, report

APPS_DIR = FILE_KEY_PREFIX.rstrip("/")
SUFFIX = ".yaml"
ENVIRONMENTS = "environments"
ROOT_VARIABLE = "VAULT_PLATFORM_ROOT"
"""Environment variable naming another directory whose ``apps/`` and ``stacks/`` are read (tests);
by default the project's, found from this file (the CLI runs the program from the project directory
and a policy pack from its own)."""
PROJECT_ROOT = Path(__file__).resolve().parents[1]
"""Where ``Pulumi.yaml`` is: the Pulumi CLI runs the program and its providers there, so a relative
``vault:caCertFile`` names a file of the repository (``stacks/ca/<stack>.pem``)."""


@dataclass(frozen=True)
class AppFile:
    """One application's file, as written."""

    path: str
    """``apps/<team>/<app>.yaml``: how messages name it."""
    team: str
    """Its folder: the team that owns it."""
    name: str
    """Its stem: the application's name, also its Kubernetes auth role."""
    document: Mapping[str, Any]
    """What it says (empty when it is not a mapping)."""
    lines: Mapping[str, int]
    """The line of each key in it (``environments.prod.tokenTtl``)."""

    def environments(self) -> Mapping[str, Any]:
        """The stacks it names, each with its own keys (``None`` or a mapping, as written)."""
        named = self.document.get(ENVIRONMENTS)
        return named if isinstance(named, Mapping) else {}


@dataclass(frozen=True)
class FileProblem:
    """A problem with a file itself, which every stack refuses."""

    key: str
    """``<path>:<key in the file>`` (``apps/a/b.yaml:``: the file as a whole)."""
    line: int | None
    """Line of the file it is on, when known."""
    problem: str
    """What is wrong."""
    fix: str
    """How to fix it."""


@dataclass(frozen=True)
class Apps:
    """Every application file of the project."""

    files: tuple[AppFile, ...]
    """Sorted by path."""
    environments: frozenset[str]
    """The stacks a file may name: those with a stack file (``stacks/Pulumi.<stack>.yaml``)."""
    problems: tuple[FileProblem, ...] = ()
    """What is wrong with the files themselves."""

    def line_of(self, key: str) -> int | None:
        """The line of ``key`` (``apps/<team>/<app>.yaml:<key>``), or of the nearest key above it
        that is written (a required key that is missing: the object it belongs in)."""
        path, _, inner = key.partition(":")
        lines = self._lines.get(path)
        if lines is None:
            return None
        while inner:
            if inner in lines:
                return lines[inner]
            inner = inner[:max(inner.rfind("."), inner.rfind("["), 0)]
        return None

    @cached_property
    def _lines(self) -> Mapping[str, Mapping[str, int]]:
        return {file.path: file.lines for file in self.files}

    def for_stack(self, stack: str) -> Iterator[StackApp]:
        """The applications of ``stack``: each file naming it, its keys for that stack."""
        for file in self.files:
            named = file.environments()
            if stack not in named:
                continue
            own = named[stack] if isinstance(named[stack], Mapping) else {}
            common = {key: value for key, value in file.document.items() if key != ENVIRONMENTS}
            yield StackApp(file, {**common, **own}, {key: f"{ENVIRONMENTS}.{stack}.{key}" for key in own})


NO_APPS = Apps(files=(), environments=frozenset())
"""A project without applications."""


@dataclass(frozen=True)
class StackApp:
    """One application as one stack reads it."""

    file: AppFile
    """Its file."""
    values: Mapping[str, Any]
    """Its common keys with the stack's own over them."""
    written: Mapping[str, str]
    """Where each key the stack overrides is written (``tokenTtl`` -> ``environments.prod.tokenTtl``)."""

    def node(self, stack: str) -> AppNode:
        """Its keys, read as the spec reads a config object."""
        return AppNode(stack, self)


_HEAD = re.compile(r"[^.\[]*")


class AppNode(Node):
    """An application's keys as one stack reads them, each named in messages where it is written:
    ``apps/payments/api-service.yaml:tokenTtl``, or ``...:environments.prod.tokenTtl`` when the
    stack overrides it."""

    def __init__(self, stack: str, app: StackApp) -> None:
        super().__init__(stack, f"{app.file.path}:", app.values)
        self.app = app

    def path(self, name: str | None) -> str:
        if name is None:
            return self.key
        head = _HEAD.match(name)
        first = head.group(0) if head else name
        return f"{self.key}{self.app.written.get(first, first)}{name[len(first):]}"


def project_root() -> Path:
    """The directory whose ``apps/`` and ``stacks/`` are read: the project's, or ``$VAULT_PLATFORM_ROOT``."""
    override = os.environ.get(ROOT_VARIABLE)
    return Path(override) if override else PROJECT_ROOT


def read_apps(root: Path | None = None) -> Apps:
    """Every application file under ``root/apps`` (default :func:`project_root`), and what is wrong
    with any of them as a file: outside ``apps/<team>/<app>.yaml``, not YAML, not a mapping, naming
    an environment without a stack file, or using a name another team's file has."""
    base = project_root() if root is None else root
    # A team's stack file (Pulumi.prod.payments.yaml, written by platformctl team-stacks) is its
    # environment's copy, not an environment of its own.
    environments = frozenset(path.name.removeprefix("Pulumi.").removesuffix(".yaml")
                             for path in (base / "stacks").glob("Pulumi.*.yaml") if path.name.count(".") == 2)
    files: list[AppFile] = []
    problems: list[FileProblem] = []
    directory = base / APPS_DIR
    paths = sorted(path for path in directory.rglob("*") if path.is_file()) if directory.is_dir() else []
    for path in paths:
        relative = path.relative_to(base).as_posix()
        misplaced = _layout_problem(relative)
        if misplaced is not None:
            problems.append(misplaced)
            continue
        try:
            document, lines = parse_yaml_with_lines(path.read_text(), relative)
        except YamlFileError as error:
            column = f" (column {error.column})" if error.column is not None else ""
            problems.append(FileProblem(f"{relative}:", error.line, f"is not valid YAML{column}: {error.problem}",
                                        error.fix))
            continue
        _, team, file_name = relative.split("/")
        file = AppFile(relative, team, file_name.removesuffix(SUFFIX),
                       document if isinstance(document, Mapping) else {}, lines)
        problems += _file_problems(file, document, environments)
        files.append(file)
    problems += _names_used_twice(files)
    return Apps(tuple(files), environments, tuple(problems))


def _layout_problem(relative: str) -> FileProblem | None:
    """Why a file under ``apps/`` is not ``apps/<team>/<app>.yaml``, or ``None``."""
    parts = relative.split("/")
    stem, dot, suffix = parts[-1].rpartition(".")
    name = stem if dot else parts[-1]
    if len(parts) == 2:
        return FileProblem(f"{relative}:", None, "is not in a team's folder",
                           f"move it to {APPS_DIR}/<team>/{name}{SUFFIX}, in the folder of the team that owns it")
    if len(parts) > 3:
        return FileProblem(f"{relative}:", None, f"is nested below a team's folder ({APPS_DIR}/<team>/<app>"
                           f"{SUFFIX})", f"move it to {APPS_DIR}/{parts[1]}/{name}{SUFFIX}")
    if f".{suffix}" != SUFFIX or not dot:
        return FileProblem(f"{relative}:", None, f"is not a {SUFFIX} file: only application files live "
                           f"under {APPS_DIR}/", f"rename it to {APPS_DIR}/{parts[1]}/{name}{SUFFIX}, or move it "
                           f"out of {APPS_DIR}/")
    for what, value in (("team folder", parts[1]), ("application name", name)):
        if not follows(value, K8S_LABEL):
            return FileProblem(f"{relative}:", None, f"{value!r} is not a valid {what}",
                               f"rename it: use {K8S_LABEL.described}, at most {K8S_LABEL.max_length} characters")
    return None


def _file_problems(file: AppFile, document: Any, environments: frozenset[str]) -> Iterator[FileProblem]:
    """What is wrong with a file that parses: not a mapping, or ``environments`` that names no stack,
    or one without a stack file, or holds something else than each stack's keys."""
    at = f"{file.path}:"
    if not isinstance(document, Mapping):
        yield FileProblem(at, None, "is not a mapping of keys to values", "write the application's keys at the "
                          "top of the file (namespace: ..., serviceAccount: ..., environments: ...)")
        return
    named = document.get(ENVIRONMENTS)
    known = ", ".join(sorted(environments)) or "none"
    if not isinstance(named, Mapping) or not named:
        yield FileProblem(f"{at}{ENVIRONMENTS}", file.lines.get(ENVIRONMENTS),
                          "names no stack: the application exists in none" if named is None or
                          isinstance(named, Mapping) else "is not a mapping of stacks",
                          f"name each stack it runs in, with the keys that differ there, e.g. "
                          f"'{ENVIRONMENTS}: {{dev: {{namespace: ...}}}}' (stacks: {known})")
        return
    for stack, own in named.items():
        key = f"{ENVIRONMENTS}.{stack}"
        if stack not in environments:
            close = difflib.get_close_matches(str(stack), sorted(environments), n=1)
            yield FileProblem(f"{at}{key}", file.lines.get(key), f"{stack!r} is not a stack of this project",
                              f"use {close[0]!r}" if close else f"name one of {known} (a stack needs its file, "
                              "stacks/Pulumi.<stack>.yaml)")
        elif own is not None and not isinstance(own, Mapping):
            yield FileProblem(f"{at}{key}", file.lines.get(key), "is not a mapping of the keys that differ there",
                              f"write '{stack}:' alone to take the common keys, or the keys that differ under it")


def _names_used_twice(files: list[AppFile]) -> Iterator[FileProblem]:
    """An application's name is its Vault role: unique across teams."""
    first: dict[str, AppFile] = {}
    for file in files:
        if file.name in first:
            yield FileProblem(f"{file.path}:", None, f"application {file.name!r} is also {first[file.name].path} "
                              "(each application is a Vault role: its name is unique across teams)",
                              "rename one of the two files")
        first.setdefault(file.name, file)


APPS_MOVED = ("move each entry to apps/<team>/<name>.yaml (the team that owns it: its folder; the name: the "
              "file's), its keys for this stack under 'environments: {<stack>: ...}', then remove this key "
              "(README, \"Applications\")")


def read_app_nodes(root: Node, app_files: Apps) -> list[AppNode]:
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


class Origins:
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


def own_name(app: AppNode, where: Node, key: str, name: str) -> None:
    """What an application's file declares carries the application's name: its owner shows in every
    path, and one team cannot take a name another team's application will want."""
    own = app.app.file.name
    if name != own and not name.startswith(f"{own}-"):
        raise where.error(key, f"{name!r} is not named after application {own!r}",
                          f"name it {own!r} or {own}-<purpose>: what an application's file declares carries its "
                          "name")
