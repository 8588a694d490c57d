"""Where the end-to-end tests look for the real tools, and what they say when one is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from platformctl.adapters.engine import ROOT
from tests.e2e.tools import CORE, KUBE, REQUIRED_VARIABLE, find_tools


def fake_tools(directory: Path, names: tuple[str, ...]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_text("#!/bin/sh\n")
        (directory / name).chmod(0o755)
    return directory


def test_the_tools_cache_is_found_without_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tools(tmp_path / "cache" / "bin", CORE + KUBE)
    monkeypatch.setenv("VAULT_PLATFORM_TOOLS", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    tools, missing = find_tools()
    assert missing == []
    assert tools is not None
    assert tools.path == (tmp_path / "cache" / "bin",)
    assert tools.which("vault") == tmp_path / "cache" / "bin" / "vault"


def test_each_missing_tool_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tools(tmp_path / "cache" / "bin", tuple(name for name in CORE if name not in ("vault", "pulumi")))
    monkeypatch.setenv("VAULT_PLATFORM_TOOLS", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_tools() == (None, ["pulumi", "vault"])


def test_without_the_tools_the_suite_says_so_in_one_line_and_ci_fails(tmp_path: Path) -> None:
    environment = {**os.environ, "VAULT_PLATFORM_TOOLS": str(tmp_path / "none"),
                   "PATH": os.path.dirname(sys.executable)}
    environment.pop(REQUIRED_VARIABLE, None)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "-q", "-rs",
               "tests/e2e/test_real_cli.py"]
    skipped = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, check=False)
    assert skipped.returncode == 0, skipped.stdout
    lines = [line for line in skipped.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(lines) == 1
    assert "the real tools are missing" in lines[0]
    assert "install.sh --kube" in lines[0]
    required = subprocess.run(command, cwd=ROOT, env={**environment, REQUIRED_VARIABLE: "require"},
                              capture_output=True, text=True, check=False)
    assert required.returncode != 0
    assert "the real tools are missing" in required.stdout
