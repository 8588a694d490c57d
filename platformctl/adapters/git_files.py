"""Files as of a git ref, for the commands that compare a branch with its base."""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Sequence
from pathlib import Path


def files_at(root: Path, ref: str, paths: Sequence[str], into: Path) -> None:
    """The files under ``paths`` (relative to the repository ``root``) as of git ``ref``, written under
    ``into``; a path ``ref`` does not have is left out. Raises ``RuntimeError`` when ``ref`` is not a
    commit."""
    listed = subprocess.run(["git", "ls-tree", "--name-only", ref, "--", *paths], cwd=root, capture_output=True,
                            text=True, check=False)
    if listed.returncode != 0:
        raise RuntimeError(f"{ref!r} is not a commit of this repository ({listed.stderr.strip()})")
    if not listed.stdout.split():
        return
    archive = subprocess.run(["git", "archive", "--format=tar", ref, "--", *listed.stdout.split()], cwd=root,
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


def changed_since(root: Path, ref: str) -> list[str]:
    """The files of the repository ``root`` that its working tree changes, adds or deletes against git
    ``ref`` (paths from the root), new files git does not ignore included. Raises ``RuntimeError`` when
    ``ref`` is not a commit."""
    changed = subprocess.run(["git", "diff", "--name-only", "--no-renames", ref, "--"], cwd=root,
                             capture_output=True, text=True, check=False)
    if changed.returncode != 0:
        raise RuntimeError(f"{ref!r} is not a commit of this repository ({changed.stderr.strip()})")
    new = subprocess.run(["git", "ls-files", "--others", "--exclude-standard"], cwd=root, capture_output=True,
                         text=True, check=True)
    return sorted({*changed.stdout.splitlines(), *new.stdout.splitlines()})
