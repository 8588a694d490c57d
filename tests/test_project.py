"""The Pulumi project file, the stack files and the pinned dependencies."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from components.environment import SpecError
from tests.support import COMMITTED, STACKS, spec_of

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

    def test_every_structured_config_key_is_declared(self) -> None:
        declared = set(dict(project()["config"]))  # type: ignore[call-overload]
        used = set()
        for stack in COMMITTED:
            config = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
            used |= {key for key, value in config.items()
                     if key.startswith("vault-platform:") and isinstance(value, dict | list)}
        assert used <= declared


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
