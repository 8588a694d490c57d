"""The vendored reference files are the upstream ones, unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

VENDORED = Path(__file__).resolve().parent / "reference"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference"
FILES = ["vault-helm/Chart.yaml", "vault-helm/values.yaml", "vault-helm/values.schema.json", "pulumi/project.json"]


@pytest.mark.skipif(not SHARED.is_dir(), reason="no shared reference copy beside the repository")
@pytest.mark.parametrize("name", FILES)
def test_vendored_copy_is_unchanged(name: str) -> None:
    assert (VENDORED / name).read_bytes() == (SHARED / name).read_bytes()
