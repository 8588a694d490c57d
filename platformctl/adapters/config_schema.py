"""The JSON Schemas of the config files, generated from the loader: ``schema/stack.schema.json`` for a
stack file (``stacks/Pulumi.<stack>.yaml``) and ``schema/app.schema.json`` for an application's file
(``apps/<team>/<app>.yaml``). Editors with the YAML language server (VS Code's YAML extension, and
most others) read the schema a file names on its first line, ``# yaml-language-server: $schema=...``.

Why recorded from the loader, not written: the loader (:mod:`environment`) is the one
definition of what a config file may say, and every message it gives is pinned by the tests. It is
imperative, but each key goes through one typed read of a :class:`~environment._reader.Node`
(``string``, ``integer``, ``duration``, ``strings``, ``child``, ``children``, ``mapping``...), whose
arguments are the key's rules: its default, naming rule (a pattern and a length), choices and bounds;
and an object that calls ``done()`` refuses the keys it did not read. A schema written by hand, or a
model of its own (pydantic), would be a second definition, and drift from the first. So the loader
runs over example files that between them reach every key (``schema/examples/``) while an observer
records each read (:func:`~environment._reader.observing`), and the schema is what the
reads say: a key is required when every read of it requires it, an object is closed when the loader
refuses its unknown keys, a default that differs between stacks is described per tier.

The schema is looser than the loader, never stricter but in one place: a stack file's own keys are
Pulumi's, without ``environment`` (Pulumi ESC), whose values the offline tools, which read only the
file, would not see. What only the loader checks:

- rules written as code rather than as a read's arguments: one key against another (a default TTL
  above its maximum, ``grants`` or ``creationStatements``, ``host`` only without ``inCluster``),
  against the tier (prod's replicas, TLS, snapshots), against what the stack declares (a policy, a
  KV path, a database role an application names), and checks of a value's own form done in code (a
  chart version, a bucket name, an ARN, a URL, a PEM certificate);
- which stacks an application's ``environments`` may name (those with a stack file), and a
  ``{fromSecret: <key>}`` whose key is set, as a secret;
- a key written only by a branch the examples do not reach (the tests check that every key the
  loader reads has a type).

It is written in the part of JSON Schema 2020-12 that means the same in draft 7 (no ``prefixItems``
or ``unevaluatedProperties``), which is what older YAML language servers validate with.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from environment._reader import FILE_KEY_PREFIX, Name, Node, observing
from environment.apps import ENVIRONMENTS, read_apps
from environment.stack_keys import KNOWN_NAMESPACES, PROJECT, TIERS
from environment.vault_access import LOGIN_KEYS
from vaultmodel.durations import _DURATION, format_duration

from .engine import ROOT
from .stackfile import read_stack, stack_spec, stacks

SCHEMA_DIR = ROOT / "schema"
STACK_SCHEMA = SCHEMA_DIR / "stack.schema.json"
APP_SCHEMA = SCHEMA_DIR / "app.schema.json"
EXAMPLES = SCHEMA_DIR / "examples"
"""A project root (``stacks/``, ``apps/``) whose files reach every key the loader reads."""
WRITE_COMMAND = "venv/bin/python -m platformctl schema --write"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

KeyPath = tuple[str, ...]
"""Where a config object is: ``("config", "cluster", "tls")``; a list's item is ``[]``, a value of a
mapping whose keys are names (``kv.secrets``) is ``*``."""
CONFIG = "config"
APP = "app"
ITEM = "[]"
ANY_KEY = "*"
_STEP = re.compile(r"([^.\[\]]+)|\[[^\[\]]*\]")

# The reads that say what a key's value is; strings_or_items says only that it is a list, and raw and
# require nothing of its type.
_TYPED = ("string", "optional_string", "integer", "boolean", "flag", "duration", "strings", "children", "child",
          "mapping")


@dataclass
class _Read:
    """One read of one key of one config object."""

    how: str
    arguments: Mapping[str, Any]


@dataclass
class _Object:
    """One config object (one :class:`Node`) as a load read it."""

    stack: str
    reads: dict[str, list[_Read]] = field(default_factory=dict)
    rules: dict[str, Name] = field(default_factory=dict)
    """Naming rules the loader checked a key's value against itself (not through a read's ``rule``)."""
    closed: bool = False
    written: bool = False
    """It holds at least one key."""


class Recorder:
    """Records the reads of loads (a :class:`~environment._reader.ReadObserver`), and says
    as JSON Schema what they accept."""

    def __init__(self) -> None:
        self.tiers: dict[str, str] = {}
        """The tier of each stack loaded (for defaults that differ by tier)."""
        self._objects: dict[KeyPath, list[_Object]] = {}
        self._of: dict[Node, tuple[KeyPath, _Object]] = {}
        self._maps: dict[KeyPath, Name | None] = {}
        """Objects whose keys are names (``kv.secrets``), with the rule the names follow."""
        # Filled in as the schemas are made (see :func:`schemas`):
        self.untyped: set[KeyPath] = set()
        """Keys only ever read untyped: left out of the schema (see :meth:`property`)."""
        self.read_in: dict[KeyPath, set[str]] = {}
        """The tiers whose examples read each key with its type."""
        self.defaulted: set[KeyPath] = set()
        """Keys read with a default."""

    # -- the observer ------------------------------------------------------------------------------

    def created(self, node: Node) -> None:
        path = self._where(node.key)
        seen = _Object(node.stack, written=bool(node.keys()))
        self._objects.setdefault(path, []).append(seen)
        self._of[node] = (path, seen)

    def read(self, node: Node, how: str, name: str, arguments: Mapping[str, Any]) -> None:
        path, seen = self._of[node]
        key = self._key(path, name)
        if how == "mapping":
            self._maps.setdefault((*path, key), None)
        seen.reads.setdefault(key, []).append(_Read(how, arguments))

    def named(self, node: Node, name: str, value: str, rule: Name) -> None:
        path, seen = self._of[node]
        steps = _steps(name)
        if steps[-1] == ITEM:
            return  # an item of a list: the list's read names its rule
        parent = self._normal(path, steps[:-1])
        if steps[-1] == value:  # the key itself: the names of a mapping follow the rule
            self._maps[parent] = rule
        elif parent == path:
            seen.rules[self._key(path, steps[-1])] = rule

    def closed(self, node: Node) -> None:
        self._of[node][1].closed = True

    # -- paths -------------------------------------------------------------------------------------

    def _where(self, key: str) -> KeyPath:
        """The path of the object read at the config key ``key`` (``vault-platform:cluster.tls``, or
        ``apps/<team>/<app>.yaml:environments.<stack>.certificate``)."""
        if key.startswith(f"{PROJECT}:"):
            return self._normal((CONFIG,), _steps(key.removeprefix(f"{PROJECT}:")))
        file, _, inner = key.partition(":")
        assert file.startswith(FILE_KEY_PREFIX), key
        steps = _steps(inner)
        # A stack's own keys (environments.<stack>.<key>) are the file's keys, written there.
        return self._normal((APP,), steps[2:] if steps[:1] == [ENVIRONMENTS] else steps)

    def _normal(self, path: KeyPath, steps: Iterable[str]) -> KeyPath:
        for step in steps:
            path = (*path, self._key(path, step))
        return path

    def _key(self, path: KeyPath, step: str) -> str:
        return ANY_KEY if path in self._maps else step

    # -- the schema --------------------------------------------------------------------------------

    def keys(self, path: KeyPath) -> list[str]:
        """The keys read of the objects at ``path``, sorted."""
        return sorted({key for read in self._objects.get(path, []) for key in read.reads})

    def required(self, path: KeyPath, key: str) -> bool:
        """Every object at ``path`` requires ``key``."""
        objects = self._objects.get(path, [])
        return bool(objects) and all(_requires(read.reads.get(key, [])) for read in objects)

    def object(self, path: KeyPath) -> dict[str, Any]:
        """The schema of the objects at ``path``."""
        if path in self._maps:
            return self._mapping(path)
        objects = self._objects.get(path, [])
        properties = {key: value for key in self.keys(path) if (value := self.property(path, key)) is not None}
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        required = [key for key in properties if self.required(path, key)]
        if required:
            schema["required"] = required
        # Closed when the loader refuses the unknown keys of every object there that holds any.
        if any(read.closed for read in objects) and all(read.closed for read in objects if read.written):
            schema["additionalProperties"] = False
        return schema

    def _mapping(self, path: KeyPath) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "object"}
        rule = self._maps[path]
        if rule is not None:
            schema["propertyNames"] = _named(rule, {})
        values = self.property(path, ANY_KEY)
        if values is not None:
            schema["additionalProperties"] = values
        return schema

    def property(self, path: KeyPath, key: str) -> dict[str, Any] | None:
        """The schema of ``key`` of the objects at ``path``, or ``None`` when no read says its type
        (it is then recorded in :attr:`untyped`)."""
        reads = [(read.stack, telling, read.rules.get(key)) for read in self._objects.get(path, [])
                 if (telling := _telling(read.reads.get(key, []))) is not None]
        forms = [self._form(path, key, telling, rule) for _, telling, rule in reads]
        if (*path, key) in self._objects:
            forms.append(self.object((*path, key)))  # also read by Node.of: {fromSecret: <key>}
        distinct = list({json.dumps(form, sort_keys=True): form for form in forms}.values())
        if not distinct:
            self.untyped.add((*path, key))
            return None
        self.read_in[(*path, key)] = {self.tiers[stack] for stack, _, _ in reads}
        if any(_default_of(telling) is not None for _, telling, _ in reads):
            self.defaulted.add((*path, key))
        schema = copy.deepcopy(distinct[0] if len(distinct) == 1 else {"anyOf": distinct})
        if not self.required(path, key):
            schema = _or_null(schema)
        default = self._default([(stack, telling) for stack, telling, _ in reads])
        if "description" in default and "description" in schema:
            default["description"] = f"{schema['description']} {default['description']}"
        return {**schema, **default}

    def _form(self, path: KeyPath, key: str, read: _Read, value_rule: Name | None) -> dict[str, Any]:
        """What one read accepts (null and the default aside)."""
        arguments = read.arguments
        how = read.how
        if how in ("string", "optional_string"):
            choices = arguments.get("choices") or ()
            if choices:
                return {"enum": list(choices)}
            rule = arguments.get("rule") or value_rule
            # A number is read as its text (``cpu: 1``), a float or a boolean is refused.
            base = {"type": ["string", "integer"]}
            return _named(rule, base) if rule is not None else base
        if how == "integer":
            schema: dict[str, Any] = {"type": "integer", "minimum": arguments["minimum"]}
            if arguments["maximum"] is not None:
                schema["maximum"] = arguments["maximum"]
            if arguments["why"]:
                schema["description"] = f"{arguments['minimum']} to {arguments['maximum']}: {arguments['why']}."
            return schema
        if how == "boolean":
            return {"type": "boolean"}
        if how == "flag":
            return {"enum": [True, False, "true", "false"],
                    "description": "true or false (the Pulumi CLI hands config values over as text)."}
        if how == "duration":
            return DURATION
        if how == "strings":
            items = {"type": "string"}
            return {"type": "array", "items": _named(arguments["rule"], items) if arguments["rule"] else items}
        if how == "children":
            return {"type": "array", "items": self.object((*path, key, ITEM))}
        if how == "child":
            return self.object((*path, key))
        if how == "strings_or_items":
            return {"type": "array"}
        assert how == "mapping", how
        return self._mapping((*path, key))

    def _default(self, reads: list[tuple[str, _Read]]) -> dict[str, Any]:
        """The ``default`` the reads (by stack) agree on; else a ``description`` of what it depends on."""
        by_tier: dict[str, set[str]] = {}
        for stack, read in reads:
            default = _default_of(read)
            if default is not None:
                by_tier.setdefault(self.tiers[stack], set()).add(json.dumps(default))
        values = {value for found in by_tier.values() for value in found}
        if len(values) == 1:
            return {"default": json.loads(values.pop())}
        if not values:
            return {}
        if any(len(found) > 1 for found in by_tier.values()):
            return {"description": "Its default depends on other keys."}
        tiers = sorted(by_tier, key=TIERS.index)
        return {"description": "Default by tier: " + ", ".join(f"{tier} {_shown(next(iter(by_tier[tier])))}"
                                                                for tier in tiers) + "."}


DURATION: dict[str, Any] = {
    "anyOf": [{"enum": [0, "0"]},
              {"type": "string", "pattern": rf"^\s*{_DURATION.pattern.removeprefix('^').removesuffix('$')}\s*$"}],
    "description": "A duration with its unit: 90s, 30m, 1h, 1h30m, 7d (0 needs none).",
}


def _shown(value: str) -> str:
    """A default (JSON text) as a description writes it: ``true``, ``10m``."""
    shown = json.loads(value)
    return shown if isinstance(shown, str) else value


def _literal(text: str) -> str:
    """A pattern matching ``text`` itself (``re.escape`` escapes ``-``, which ECMAScript's unicode
    patterns, the ones the YAML language server runs, refuse)."""
    return re.sub(r"[.^$*+?()\[\]{}|\\/]", r"\\\g<0>", text)


def _steps(text: str) -> list[str]:
    """``transit.keys[payments].name`` -> ``["transit", "keys", "[]", "name"]``."""
    return [name or ITEM for name in _STEP.findall(text)]


def _telling(reads: list[_Read]) -> _Read | None:
    """The read of a key that says the most of its value (several reads of one key all apply)."""
    for kinds in (_TYPED, ("strings_or_items",)):
        for read in reads:
            if read.how in kinds:
                return read
    return None


def _requires(reads: list[_Read]) -> bool:
    """A key read so is required: ``require``, or a read with neither a default nor ``optional_``."""
    return any(read.how == "require" or (read.how in ("string", "integer") and read.arguments["default"] is None)
               for read in reads)


def _default_of(read: _Read) -> Any:
    if read.how == "flag":
        return False
    if read.how not in ("string", "integer", "boolean", "duration"):
        return None
    default = read.arguments["default"]
    return format_duration(default) if read.how == "duration" and default is not None else default


def _named(rule: Name, schema: Mapping[str, Any]) -> dict[str, Any]:
    return {**schema, "pattern": f"^(?:{rule.pattern.pattern})$", "maxLength": rule.max_length,
            "description": f"{rule.described[0].upper()}{rule.described[1:]}, at most {rule.max_length} characters."}


def _or_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or null: the loader reads a key written without a value (``key:``) as unset (a
    section is then absent, or an empty object)."""
    if "anyOf" in schema:
        return {**schema, "anyOf": [*schema["anyOf"], {"type": "null"}]}
    if "enum" in schema:
        return {**schema, "enum": [*schema["enum"], None]}
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return {**schema, "type": [*kinds, "null"]}


# -- the two schemas ----------------------------------------------------------------------------------

SECURE = {
    "type": "object",
    "properties": {"secure": {"type": "string"}},
    "required": ["secure"],
    "additionalProperties": False,
}
"""A value ``pulumi config set --secret`` encrypted."""


def recorded(root: Path = EXAMPLES) -> Recorder:
    """The reads of every stack of ``root`` (``stacks/``, with its ``apps/``) as the program loads it;
    raises the stack's :class:`~environment.SpecError` when one is refused."""
    apps = read_apps(root)
    recorder = Recorder()
    with observing(recorder):
        for stack in stacks(root):
            recorder.tiers[stack] = stack_spec(read_stack(stack, root, apps)).tier
    return recorder


def stack_schema(recorder: Recorder) -> dict[str, Any]:
    """The schema of a whole stack file: Pulumi's keys, and the ``config`` the program reads."""
    root = (CONFIG,)
    keys = recorder.keys(root)
    config: dict[str, Any] = {f"{PROJECT}:{key}": schema for key in keys
                              if (schema := recorder.property(root, key)) is not None}
    config |= {key: {**SECURE, "description": "How `pulumi up` logs in to Vault: a secret."} for key in LOGIN_KEYS}
    providers = "|".join(_literal(namespace) for namespace in KNOWN_NAMESPACES if namespace != PROJECT)
    structured = "|".join(_literal(key) for key in keys)
    return {
        "$schema": DIALECT,
        "title": "vault-platform stack file (stacks/Pulumi.<stack>.yaml)",
        "description": f"Generated from the program's config loader by `{WRITE_COMMAND}`: do not edit.",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": config,
                "patternProperties": {
                    # Each provider, and Pulumi, reads its own namespace.
                    f"^(?:{providers}):.": {"description": "Read by the provider of that name (or Pulumi)."},
                    # Any other key of the project's namespace is a secret a {fromSecret: <key>} names.
                    f"^{_literal(PROJECT)}:(?!(?:{structured})$)[A-Za-z][A-Za-z0-9]*$": {
                        **SECURE, "description": "A secret that a {fromSecret: <key>} names, set with "
                                                 "`pulumi config set --secret`."},
                },
                "additionalProperties": False,
            },
            # Pulumi's own keys of a stack file (pulumi/pulumi, sdk/go/common/workspace/project.go,
            # ProjectStack); `environment` (Pulumi ESC) is left out: the offline tools read only this file.
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
            "encryptionsalt": {"type": "string"},
        },
        "required": ["config"],
        "additionalProperties": False,
    }


def app_schema(recorder: Recorder) -> dict[str, Any]:
    """The schema of an application's file: its keys, and under ``environments`` each stack's own."""
    root = (APP,)
    keys = recorder.object(root)
    required = keys.pop("required", [])
    pointer = "#/$defs/keys/properties"
    return {
        "$schema": DIALECT,
        "title": "vault-platform application file (apps/<team>/<app>.yaml)",
        "description": f"Generated from the program's config loader by `{WRITE_COMMAND}`: do not edit.",
        "type": "object",
        "properties": {
            **{key: {"$ref": f"{pointer}/{key}"} for key in keys["properties"]},
            ENVIRONMENTS: {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/keys"}]},
                "description": "Each stack the application runs in (one with a stack file), with the keys that "
                               "differ there: a key written under a stack replaces the common one whole.",
            },
        },
        "required": [ENVIRONMENTS],
        "additionalProperties": False,
        # A required key is written once for every stack, or under each stack.
        "allOf": [{"anyOf": [{"required": [key]}, {"properties": {ENVIRONMENTS: {"additionalProperties": {
            "type": "object", "required": [key]}}}}]} for key in required],
        "$defs": {"keys": keys},
    }


def schemas(recorder: Recorder) -> dict[Path, dict[str, Any]]:
    """Each schema file's schema, from what ``recorder`` recorded."""
    return {STACK_SCHEMA: stack_schema(recorder), APP_SCHEMA: app_schema(recorder)}


def generated() -> dict[Path, str]:
    """Each schema file's text, generated now."""
    return {path: json.dumps(schema, indent=2) + "\n" for path, schema in schemas(recorded()).items()}


def modeline(file: Path, schema: Path) -> str:
    """The first line of ``file`` that names its schema to the YAML language server (relative to the
    file's folder, which is how it resolves it)."""
    return f"# yaml-language-server: $schema={Path(os.path.relpath(schema, file.parent)).as_posix()}"
