"""The JSON Schemas of the config files (``schema/``, :mod:`platformctl.config_schema`): generated from the
loader and not stale, named on the first line of every committed stack and application file, which
they accept; and, on each input a schema can judge, in agreement with the loader: what the loader
refuses at a key, the schema refuses at that key, and what the loader accepts, the schema accepts."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator, ValidationError

from environment import StackRefused, stack_keys
from environment._reader import FILE_KEY_PREFIX, K8S_LABEL, Name, Node, check_name, observing
from environment.apps import read_apps
from platformctl.__main__ import main
from platformctl.adapters import config_schema
from platformctl.adapters.config_schema import APP_SCHEMA, STACK_SCHEMA, WRITE_COMMAND, Recorder, generated, modeline
from platformctl.adapters.engine import ROOT
from platformctl.adapters.stackfile import stack_config, stack_file
from platformctl.commands import schema_command
from platformctl.core.stack_config import StackConfig

from .support import DELETE, TEST_STACKS, _set_in, _set_path, _steps, labelled, spec_of_config, with_files

STACK_FILES = sorted(path for folder in ("stacks", "tests/stacks", "tests/e2e/stacks", "schema/examples/stacks")
                     for path in (ROOT / folder).glob("Pulumi.*.yaml"))
APP_FILES = sorted(path for folder in ("apps", "tests/apps", "schema/examples/apps")
                   for path in (ROOT / folder).glob("*/*.yaml"))
P = "vault-platform:"
API = f"{FILE_KEY_PREFIX}payments/api-service.yaml:"
TIERS = {"dev", "staging", "prod"}


@cache
def recorder() -> Recorder:
    return config_schema.recorded()


@cache
def validator(schema: Path) -> Draft202012Validator:
    return Draft202012Validator(yaml.safe_load(schema.read_text()))


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


class TestTheSchemas:
    def test_the_committed_schemas_are_what_the_loader_says(self) -> None:
        for path, text in generated().items():
            assert path.read_text() == text, f"{relative(path)} is stale: run `{WRITE_COMMAND}`"

    @pytest.mark.parametrize("schema", [STACK_SCHEMA, APP_SCHEMA], ids=relative)
    def test_they_are_json_schema_2020_12(self, schema: Path) -> None:
        document = yaml.safe_load(schema.read_text())
        assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(document)

    @pytest.mark.parametrize("path", [*STACK_FILES, *APP_FILES], ids=relative)
    def test_each_committed_file_names_its_schema_on_its_first_line_and_follows_it(self, path: Path) -> None:
        schema = STACK_SCHEMA if path in STACK_FILES else APP_SCHEMA
        first = path.read_text().splitlines()[0]
        assert first == modeline(path, schema)
        assert (path.parent / first.partition("$schema=")[2]).resolve() == schema
        document = yaml.safe_load(path.read_text())
        assert list(validator(schema).iter_errors(document)) == []
        # Older YAML language servers validate with draft 7, where the schemas mean the same.
        assert list(Draft7Validator(validator(schema).schema).iter_errors(document)) == []

    def test_every_key_the_loader_reads_has_a_type_but_those_it_refuses_or_checks_itself(self) -> None:
        schemas = recorder()
        config_schema.schemas(schemas)
        # apps: refused whenever set (applications have files of their own); a label's value: checked
        # by operations.load_monitoring with a pattern of its own.
        assert schemas.untyped == {("config", "apps"), ("config", "monitoring", "prometheusLabels", "*"),
                                   ("config", "monitoring", "prometheusPodLabels", "*")}

    def test_the_examples_read_every_key_with_a_default_in_every_tier(self) -> None:
        # A default the examples read in one tier only could not be told from one that differs by tier.
        schemas = recorder()
        config_schema.schemas(schemas)
        assert schemas.defaulted
        assert {key: tiers for key in schemas.defaulted if (tiers := schemas.read_in[key]) != TIERS} == {}

    def test_a_stack_files_own_keys_are_pulumis_but_an_esc_environment(self) -> None:
        document = yaml.safe_load(stack_file("prod", TEST_STACKS).read_text())
        pulumis = {"secretsprovider": "awskms://alias/pulumi", "encryptedkey": "AQIC", "encryptionsalt": "v1:x"}
        assert list(validator(STACK_SCHEMA).iter_errors({**document, **pulumis})) == []
        (error,) = validator(STACK_SCHEMA).iter_errors({**document, "environment": ["vault/prod"]})
        assert error.message == "Additional properties are not allowed ('environment' was unexpected)"

    def test_the_stack_keys_are_the_loaders(self) -> None:
        assert recorder().keys(("config",)) == sorted(stack_keys._STRUCTURED_KEYS)

    def test_a_default_is_stated_once_or_by_tier(self) -> None:
        properties = yaml.safe_load(STACK_SCHEMA.read_text())["properties"]["config"]["properties"]
        kv = properties[f"{P}kv"]["properties"]
        assert kv["maxVersions"]["default"] == 10
        assert "default" not in kv["casRequired"]
        assert kv["casRequired"]["description"] == "Default by tier: dev false, staging false, prod true."
        interval = properties[f"{P}snapshots"]["properties"]["interval"]
        assert "default" not in interval
        assert interval["description"].endswith("Default by tier: dev 1d, staging 6h, prod 1h.")
        audit_device = properties[f"{P}audit"]["properties"]["devices"]["items"]["properties"]
        assert audit_device["description"]["description"].endswith("Its default depends on other keys.")


class TestTheCommand:
    def test_it_checks_and_writes_the_schemas(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
        texts = {tmp_path / path.name: text for path, text in generated().items()}
        monkeypatch.setattr(schema_command, "generated", lambda: texts)
        monkeypatch.setattr(schema_command, "ROOT", tmp_path)
        assert main(["schema"]) == 1
        assert capsys.readouterr().err == "".join(
            f"error: {path.name} is not what the config loader says: run `{WRITE_COMMAND}`\n" for path in texts)
        assert main(["schema", "--write"]) == 0
        assert capsys.readouterr().out == "".join(f"wrote {path.name}\n" for path in texts)
        assert {path: path.read_text() for path in texts} == texts
        assert main(["schema"]) == 0


class TestTheObserver:
    """The hook the schemas are recorded through (environment/_reader.py)."""

    def test_it_is_told_of_the_loaders_reads_not_of_those_a_read_makes(self) -> None:
        told: list[tuple[Any, ...]] = []

        class Observer:
            def created(self, node: Node) -> None:
                told.append(("created", node.key))

            def read(self, node: Node, how: str, name: str, arguments: Mapping[str, Any]) -> None:
                told.append(("read", node.key, how, name, dict(arguments)))

            def named(self, node: Node, name: str, value: str, rule: Name) -> None:
                told.append(("named", node.key, name, value, rule))

            def closed(self, node: Node) -> None:
                told.append(("closed", node.key))

        root = Node("dev", P, {"cluster": {"namespace": "vault"}, "tier": "dev"})
        with observing(Observer()):
            cluster = root.child("cluster")
            assert cluster.string("namespace", rule=K8S_LABEL) == "vault"
            check_name(root, "tier", "dev", K8S_LABEL)
            cluster.done()
        root.raw("tier")  # no longer observed
        assert told == [
            ("read", P, "child", "cluster", {}),
            ("created", f"{P}cluster"),
            ("read", f"{P}cluster", "string", "namespace", {"default": None, "rule": K8S_LABEL, "choices": ()}),
            ("named", P, "tier", "dev", K8S_LABEL),
            ("closed", f"{P}cluster"),
        ]


# -- the corpus: inputs the loader and the schema both judge ------------------------------------------

class Case(NamedTuple):
    """Files of a test stack, edited by ``changes`` (keys as :func:`tests.support.edited` takes them); a
    refused one is refused at ``at``, by default the one change's key."""

    what: str
    stack: str
    changes: dict[str, Any]
    at: str | None = None


REFUSED = [
    Case("a string for a whole number", "prod", {f"{P}cluster.replicas": "five"}),
    Case("a string for a boolean", "prod", {f"{P}kv.casRequired": "yes"}),
    Case("a string for an object", "prod", {f"{P}cluster.tls": "on"}),
    Case("an object for a list", "prod", {f"{P}policies": {"name": "x"}}),
    Case("a number in a list of strings", "prod", {f"{P}cluster.tls.extraDnsNames": ["vault.example.com", 5]},
         f"{P}cluster.tls.extraDnsNames[1]"),
    Case("a duration without its unit", "prod", {f"{API}tokenTtl": 60}),
    Case("text that is no duration", "prod", {f"{API}environments.prod.tokenTtl": "1 hour"}),
    Case("a flag that is neither true nor false", "prod", {f"{P}teamStacks": "yes"}),
    Case("a value outside the choices", "prod", {f"{P}database.connections[0].sslMode": "verify"}),
    Case("a key type outside the choices", "prod", {f"{P}pki.roles[0].keyType": "dsa"}),
    Case("a tier that is none", "access", {f"{P}tier": "production"}),
    Case("an unknown key", "prod", {f"{P}cluster.replicaz": 3}),
    Case("an unknown key of a list item", "prod", {f"{P}transit.keys[0].rotate": "30d"}),
    Case("an unknown key of the project's", "prod", {f"{P}replicas": 3}),
    Case("a key in no namespace the program reads", "prod", {"vault-platfrom:transit": {"keys": []}}),
    Case("applications in the stack file", "prod", {f"{P}apps": [{"name": "x"}]}),
    Case("an unknown key of an application", "prod", {f"{API}tokenTTL": "1h"}),
    Case("an unknown key under a stack of an application", "prod", {f"{API}environments.prod.kvpaths": []}),
    Case("an application's name in its file", "prod", {f"{API}name": "api"}),
    Case("a missing required key", "prod", {f"{P}cluster.chartVersion": DELETE}),
    Case("a missing required key of a list item", "prod", {f"{P}database.connections[0].adminUser": DELETE}),
    Case("an application's missing required key", "prod", {f"{API}serviceAccount": DELETE}),
    Case("a name that is no DNS label", "prod", {f"{P}cluster.namespace": "Vault"}),
    Case("a name that is too long", "prod", {f"{P}cluster.releaseName": "v" * 64}),
    Case("a KV secret's name", "prod", {f"{P}kv.secrets.Api_Service": {"data": {"key": {"random": {}}}}}),
    Case("a KV secret's key", "prod", {f"{P}kv.secrets.api-service.data.Api-Key": {"random": {}}}),
    Case("an application's namespace", "prod", {f"{API}environments.prod.namespace": "Production"}),
    Case("a KV path of an application", "prod", {f"{API}environments.prod.kvPaths": ["/production/api-service"]},
         f"{API}environments.prod.kvPaths[0]"),
    Case("a repository's name", "prod", {f"{P}githubActions.repository": "vault platform"}),
    Case("a secret's key", "prod", {f"{P}database.connections[0].adminPassword.fromSecret": "postgres-admin"}),
    Case("a number above the maximum", "prod", {f"{P}cluster.replicas": 9}),
    Case("a number below the minimum", "prod", {f"{P}kv.maxVersions": 0}),
    Case("a latency above the maximum", "prod", {f"{P}monitoring.requestLatencyMs": 100_000}),
    Case("a generated secret too short", "access", {f"{P}kv.secrets.payments.data.processor_key.random.length": 8}),
    Case("a port above the maximum", "prod", {f"{P}database.connections[0].port": 70_000}),
    Case("a plaintext secret", "prod", {f"{P}database.connections[0].adminPassword": "hunter2"}),
    Case("a plaintext Vault token", "prod", {"vault:token": "hvs.plain"}),
]

ACCEPTED = [
    Case("as committed", "prod", {}),
    Case("a number where text is read", "prod", {f"{P}cluster.resources.requests.cpu": 1}),
    Case("a flag as the CLI hands it", "prod", {f"{P}teamStacks": "false"}),
    Case("a duration of 0 without a unit", "prod", {f"{P}kv.deleteVersionAfter": 0}),
    Case("a duration with spaces around", "prod", {f"{API}environments.staging.tokenTtl": " 30m "}),
    Case("a key without a value", "prod", {f"{P}cluster.tls": None, f"{API}tokenTtl": None}),
    Case("a section without a value", "prod", {f"{P}cluster.autoUnseal": None, f"{P}oidc": None}),
    Case("a required key written for each stack", "prod", {
        f"{API}serviceAccount": DELETE, **{f"{API}environments.{stack}.serviceAccount": "api-service-sa"
                                           for stack in ("dev", "staging", "prod", "access", "external")}}),
    Case("a secret of the project's", "prod", {f"{P}postgresAdminPassword": {"secure": "v1:abc"}}),
    Case("the providers' keys", "prod", {"aws:region": "eu-west-1", "kubernetes:context": "x"}),
]


def edited_files(case: Case) -> dict[str, Any]:
    """The documents of the files ``case`` edits: ``stack`` (the test stack's file) and each
    application file (by its path)."""
    documents: dict[str, Any] = {"stack": yaml.safe_load(stack_file(case.stack, TEST_STACKS).read_text())}
    for key, value in case.changes.items():
        value = value if value is DELETE else copy.deepcopy(value)
        if key.startswith(FILE_KEY_PREFIX):
            path, _, inner = key.partition(":")
            document = documents.setdefault(path, yaml.safe_load((TEST_STACKS / path).read_text()))
            _set_in(document, _steps(inner), value)
        else:
            _set_path(documents["stack"]["config"], key, value)
    return documents


def loaded(case: Case, documents: Mapping[str, Any]) -> StackConfig:
    """The stack ``case`` edits, read from the files ``documents`` as the program reads them."""
    apps = with_files(read_apps(TEST_STACKS), {f"{path}:": document for path, document in documents.items()
                                               if path != "stack"})
    return stack_config(case.stack, documents["stack"], apps)


def where(key: str) -> tuple[str, tuple[str | int, ...]]:
    """The file a key is in (as :func:`edited_files` names it), and its path in that file's document."""
    if key.startswith(FILE_KEY_PREFIX):
        path, _, inner = key.partition(":")
        return path, tuple(_steps(inner))
    namespace, _, rest = key.partition(":")
    first, *steps = _steps(rest)
    return "stack", ("config", f"{namespace}:{first}", *steps)


def schema_errors(documents: Mapping[str, Any]) -> Iterator[tuple[str, ValidationError]]:
    for name, document in documents.items():
        schema = STACK_SCHEMA if name == "stack" else APP_SCHEMA
        for error in validator(schema).iter_errors(document):
            yield name, error


def locations(error: ValidationError) -> set[tuple[str | int, ...]]:
    """Where ``error`` is: its value's path, or the key's that is unknown, missing or badly named."""
    path = tuple(error.absolute_path)
    found = {path}
    schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        patterns = schema.get("patternProperties", {})
        found |= {(*path, key) for key in error.instance if key not in schema.get("properties", {})
                  and not any(re.search(pattern, key) for pattern in patterns)}
    if error.validator == "required" and isinstance(error.instance, dict):
        found |= {(*path, key) for key in schema["required"] if key not in error.instance}
    if "propertyNames" in error.schema_path:
        found.add((*path, str(error.instance)))
    for cause in error.context or ():
        found |= locations(cause)
    return found


@pytest.mark.parametrize("case", REFUSED, ids=[case.what for case in REFUSED])
def test_the_loader_and_the_schema_refuse_it_at_the_same_key(case: Case) -> None:
    (change,) = case.changes
    key = case.at or change
    documents = edited_files(case)
    config = loaded(case, documents)
    with pytest.raises(StackRefused) as refused:
        spec_of_config(config)
    assert labelled(config, key) in [problem.key for problem in refused.value.problems], str(refused.value)
    file, path = where(key)
    errors = list(schema_errors(documents))
    assert errors, f"the schema accepts {case.changes}"
    for name, error in errors:
        assert name == file, (name, error.message)
        assert path in locations(error), error.message


@pytest.mark.parametrize("case", ACCEPTED, ids=[case.what for case in ACCEPTED])
def test_the_loader_and_the_schema_accept_it(case: Case) -> None:
    documents = edited_files(case)
    spec_of_config(loaded(case, documents))
    assert [(name, error.message) for name, error in schema_errors(documents)] == []
