"""The Pulumi CLI, as the commands run it: ``pulumi`` on ``PATH``, in the working directory (the project's),
with the backend, secrets passphrase or key and credentials of the environment it is run in."""

from __future__ import annotations

import json
import subprocess
from typing import Any


class PulumiFailed(RuntimeError):
    """A CLI command that exited non-zero; the message holds the command and the end of its output."""


def pulumi(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pulumi", *arguments], capture_output=True, text=True, check=False)


def checked(*arguments: str) -> str:
    """What ``pulumi <arguments>`` prints; raises :class:`PulumiFailed` when it fails."""
    result = pulumi(*arguments)
    if result.returncode != 0:
        raise PulumiFailed(f"pulumi {' '.join(arguments[:2])} exited {result.returncode}:\n"
                           f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result.stdout


def stack_names() -> list[str]:
    """The stacks the backend holds (``pulumi stack ls --json``), as it names them."""
    return [str(stack["name"]) for stack in json.loads(checked("stack", "ls", "--json"))]


def deployment(stack: str) -> dict[str, Any]:
    """The stack's state (``pulumi stack export``), secrets encrypted; empty for a stack never updated."""
    exported: dict[str, Any] = json.loads(checked("stack", "export", "--stack", stack)).get("deployment") or {}
    return exported
