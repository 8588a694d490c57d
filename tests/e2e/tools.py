"""Where the real tools are: on ``PATH``, else in the tools' cache (``$VAULT_PLATFORM_TOOLS``, else
``${XDG_CACHE_HOME:-~/.cache}/vault-platform-tools/bin``), where ``../shared/tools/install.sh`` puts them."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from platformctl.adapters.engine import ROOT

CORE = ("pulumi", "pulumi-language-python", "pulumi-language-python-exec", "pulumi-resource-pulumi-python",
        "pulumi-resource-vault", "pulumi-resource-random",
        "pulumi-resource-kubernetes", "vault")
"""The CLI, its Python language host, the providers the program uses, and Vault."""
KUBE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
"""What ``kube-local.sh`` runs: a loopback Kubernetes API whose pods become Ready."""
SHARED_TOOLS = ROOT.parent / "shared" / "tools"
"""The platform team's copy of the tools, beside the repository on CI and the developers' machines."""
HOW_TO_GET_THEM = ("get them with `../shared/tools/install.sh --kube` (README, 'Testing against a real "
                   "Vault'), or put pulumi, its Python language host, the vault, random and kubernetes "
                   "plugins and vault on PATH")
REQUIRED_VARIABLE = "VAULT_PLATFORM_E2E"
"""Set to ``require`` (``.ci/run`` does) to fail, rather than skip, when a tool is missing."""


@dataclass(frozen=True)
class Tools:
    """The directories the real tools were found in."""

    path: tuple[Path, ...]
    """Directories to put first on ``PATH`` for the CLI (it finds its plugins there)."""
    kube_local: Path | None
    """``kube-local.sh``, when it and the Kubernetes binaries it runs are here."""
    kube_bin: Path
    """Where the Kubernetes binaries are (the tools' cache)."""

    def which(self, name: str) -> Path:
        for directory in self.path:
            if (directory / name).is_file():
                return directory / name
        raise FileNotFoundError(name)


def _cache_bin() -> Path:
    cache = os.environ.get("VAULT_PLATFORM_TOOLS") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vault-platform-tools")
    return Path(cache) / "bin"


def find_tools() -> tuple[Tools | None, list[str]]:
    """The tools, or ``None`` and the names of those missing."""
    directories: list[Path] = []
    missing: list[str] = []
    for name in CORE:
        found = shutil.which(name) or (str(_cache_bin() / name) if (_cache_bin() / name).is_file() else None)
        if found is None:
            missing.append(name)
        elif Path(found).parent not in directories:
            directories.append(Path(found).parent)
    if missing:
        return None, missing
    kube_bin = _cache_bin()
    script = SHARED_TOOLS / "kube-local.sh"
    kube_ready = script.is_file() and all((kube_bin / name).is_file() for name in KUBE)
    return Tools(tuple(directories), script if kube_ready else None, kube_bin), []


def required() -> bool:
    """Whether a missing tool fails the run (CI) rather than skipping the end-to-end tests."""
    return os.environ.get(REQUIRED_VARIABLE) == "require"
