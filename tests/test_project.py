"""The Pulumi project file, the stack files and the pinned dependencies."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from environment import SpecError
from platformctl.adapters.stackfile import project_defaults, read_stack
from tests.support import COMMITTED, STACKS, spec_of, spec_of_config

ROOT = Path(__file__).resolve().parents[1]
PROJECT_SCHEMA = ROOT / "tests" / "reference" / "pulumi" / "project.json"


def project() -> dict[str, object]:
    return dict(yaml.safe_load((ROOT / "Pulumi.yaml").read_text()))


class TestProjectFile:
    def test_validates_against_the_schema_the_cli_embeds(self) -> None:
        jsonschema.Draft202012Validator(json.loads(PROJECT_SCHEMA.read_text())).validate(project())

    def test_schema_check_can_fail(self) -> None:
        broken = {**project(), "runtime": {"name": "python", "options": "venv"}, "stackConfigDir": 3}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft202012Validator(json.loads(PROJECT_SCHEMA.read_text())).validate(broken)

    def test_python_with_pip_and_the_shared_virtualenv(self) -> None:
        document = project()
        assert document["name"] == "vault-platform"
        assert document["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "venv"}}
        assert document["stackConfigDir"] == "stacks"
        assert "venv" in (ROOT / "bin" / "_venv.sh").read_text()

    def test_no_declared_key_is_required(self) -> None:
        # The CLI refuses a stack that lacks a key declared in the project's namespace without a
        # `default` (pulumi/pulumi pkg/workspace/config.go, mergeConfig): every key here is optional.
        declarations = dict(project()["config"])  # type: ignore[call-overload]
        assert declarations
        assert [key for key, declared in declarations.items() if "default" not in declared] == []

    def test_required_key_rule_can_fail(self) -> None:
        declarations = {**dict(project()["config"]), "vault-platform:tier": {"type": "string"}}  # type: ignore[call-overload]
        assert [key for key, declared in declarations.items() if "default" not in declared] == ["vault-platform:tier"]

    @pytest.mark.parametrize("stack", COMMITTED)
    def test_each_default_is_what_the_program_assumes_without_it(self, stack: str) -> None:
        # The CLI hands every default to the program as if the stack had set it: a default must not
        # change what a stack that leaves the key out declares.
        with_defaults = read_stack(stack)
        without = dataclasses.replace(with_defaults, config={
            key: value for key, value in with_defaults.config.items() if key not in project_defaults()})
        assert set(project_defaults()) <= set(with_defaults.config)
        assert spec_of_config(with_defaults) == spec_of_config(without)

    def test_the_entry_point_is_the_project_folder(self) -> None:
        # With `main: __main__.py` the language host runs the file with runpy.run_path, which leaves the
        # project's folder off sys.path, and `import components` fails (pulumi/pulumi#7360).
        assert "main" not in project()
        assert (ROOT / "__main__.py").is_file()


class TestStackFiles:
    @pytest.mark.parametrize("stack", COMMITTED)
    def test_tags_name_the_owner_and_the_environment(self, stack: str) -> None:
        config = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert config["pulumi:tags"] == {"owner": "platform-team", "environment": stack}

    @pytest.mark.parametrize("stack", COMMITTED)
    def test_default_providers_are_disabled(self, stack: str) -> None:
        config = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert config["pulumi:disable-default-providers"] == ["kubernetes", "vault"]

    @pytest.mark.parametrize("stack", STACKS)
    def test_a_secret_written_in_plaintext_is_refused(self, stack: str) -> None:
        # The committed files only reference secrets; one written in as plain text must not load.
        with pytest.raises(SpecError, match="plaintext"):
            spec_of(stack, {"vault:token": "hvs.plain"}, secret_keys=set())


class TestPinnedDependencies:
    @pytest.mark.parametrize("name", ["requirements.txt", "requirements-dev.txt", "constraints.txt"])
    def test_every_requirement_is_an_exact_pin(self, name: str) -> None:
        lines = [line.strip() for line in (ROOT / name).read_text().splitlines()]
        requirements = [line for line in lines if line and not line.startswith(("#", "-r "))]
        assert requirements
        assert [line for line in requirements if not re.fullmatch(r"[A-Za-z0-9_.\[\],-]+==[\w.+-]+", line)] == []

    def test_the_program_needs_these_providers(self) -> None:
        pins = (ROOT / "requirements.txt").read_text()
        for package in ("pulumi==", "pulumi-kubernetes==", "pulumi-vault==", "pulumi-random=="):
            assert package in pins
