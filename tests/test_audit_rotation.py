"""The audit log rotation in the SIGHUP sidecar, run under a real POSIX shell with its real tools
(``stat``, ``mv``, ``gzip``, ``find``, ``pgrep``) beside a stand-in server: a copy of the shell under
its own name that appends numbered lines to the log without pause and, like Vault's file audit
device, reopens the log on SIGHUP. Rotation by size, once a day, gzip, retention, and no line lost.
The spec section and the Helm values are tested in ``test_helm_values`` and here."""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from render.helm_values import AuditLogRotation, audit_log_rotation, sighup_script
from tests.sidecar_loop import SidecarLoop, StandInServer, renew_certificate, wait_until
from tests.support import refusal, spec_of

NOON = 1795867200
"""2026-11-28T12:00:00Z"""


class RotationRun:
    """The loop for one log (and a certificate when ``tls``), driven round by round, beside the
    stand-in server."""

    def __init__(self, directory: Path, *, max_bytes: int = 2000, retention_days: int = 1, tls: bool = False) -> None:
        self.log = directory / "audit" / "vault-audit.log"
        self.log.parent.mkdir()
        self.server = StandInServer(directory, "vrot")
        # `date` reads this clock: rotated logs are named by it, and a test moves it to the next day.
        self.clock = directory / "clock"
        self.clock.write_text(f"{NOON}\n")
        certificates = None
        if tls:
            certificates = directory / "tls"
            certificates.mkdir()
            renew_certificate(certificates, 1)
        self.certificates = certificates
        rotation = AuditLogRotation(files=(str(self.log),), max_bytes=max_bytes, retention_days=retention_days)
        script = sighup_script(str(certificates) if certificates else None, rotation, self.server.name)
        self.loop = SidecarLoop(script, directory, self.clock)

    def start_server(self, pause: float = 0.002) -> None:
        """A server that appends numbered entries and, like the file audit device, reopens on SIGHUP."""
        self.server.start(f'exec 3>>"{self.log}"; i=0; '
                          f'while :; do i=$((i+1)); echo "entry $i" >&3; sleep {pause}; done',
                          on_hangup=f'exec 3>>"{self.log}"')

    def next_day(self) -> None:
        self.clock.write_text(f"{int(self.clock.read_text()) + 86400}\n")

    def signalled(self, reason: str) -> str:
        return f"{reason}: sent SIGHUP to {self.server.name} (pid {self.server.pid})"

    def rotated(self) -> list[Path]:
        return sorted(p for p in self.log.parent.iterdir() if p.name != self.log.name)

    def stop(self) -> None:
        self.loop.stop()
        self.server.stop()

    def entries(self) -> list[int]:
        """Every numbered entry in the log and the rotated logs, in file order."""
        numbers = []
        for path in [*self.rotated(), self.log]:
            text = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            numbers += [int(line.split()[1]) for line in text.decode().splitlines()]
        return numbers


@pytest.fixture
def run(tmp_path: Path) -> Iterator[RotationRun]:
    rotation = RotationRun(tmp_path)
    yield rotation
    rotation.stop()


class TestRotationLoop:
    """The script under a real shell, round by round (``tests/sidecar_loop.py``): each round's log is
    every SIGHUP it sent, and the server's own count of handled signals matches it."""

    def test_a_log_past_its_size_is_rotated_gzipped_and_no_entry_is_lost(self, run: RotationRun) -> None:
        run.start_server()
        assert run.loop.round() == []  # first seen: never signalled in that round
        for rotation in (1, 2, 3):
            wait_until(lambda: run.log.exists() and run.log.stat().st_size > 2000)
            assert run.loop.round() == [run.signalled(f"rotated {run.log}")]
            # Vault keeps writing the renamed log until it handles the signal (a round of 30 s in the
            # chart), so the next round's gzip comes after that.
            assert run.server.handled(rotation) == rotation
            (renamed,) = (path for path in run.rotated() if path.suffix != ".gz")
            assert renamed.name.startswith("vault-audit.log.2026112")
            assert renamed.name.endswith("Z")
            if run.log.stat().st_size <= 2000:
                assert run.loop.round() == []  # gzips it; nothing to signal
        run.server.stop()
        assert run.loop.round() == []  # the last renamed log gzipped
        assert [path.suffix for path in run.rotated()] == [".gz"] * 3
        assert all(path.name.startswith("vault-audit.log.2") for path in run.rotated())
        entries = run.entries()
        assert entries == list(range(1, len(entries) + 1))  # in order, none missing, none twice

    def test_a_small_log_is_rotated_once_a_day(self, run: RotationRun) -> None:
        run.start_server(pause=0.5)  # minutes to reach the size, however slow the machine
        wait_until(lambda: run.log.exists() and run.log.stat().st_size > 0)
        assert run.loop.rounds(3) == []
        assert run.rotated() == []
        run.next_day()
        assert run.loop.round() == [run.signalled(f"rotated {run.log}")]
        assert run.loop.rounds(3) == []  # once for the new day, not every round
        assert run.server.handled(1) == 1
        # Renamed at the fourth round, the clock's: 30 s a round from noon, then a day on.
        assert [path.name for path in run.rotated()] == ["vault-audit.log.20261129T120200Z.gz"]

    def test_an_empty_log_is_not_rotated_on_a_new_day(self, run: RotationRun) -> None:
        run.log.touch()
        run.server.start("while :; do sleep 0.02; done")  # writes nothing
        assert run.loop.round() == []
        run.next_day()
        assert run.loop.rounds(3) == []
        assert run.rotated() == []

    def test_rotated_logs_past_the_retention_are_deleted(self, run: RotationRun) -> None:
        old = run.log.parent / "vault-audit.log.20261126T000000Z.gz"
        recent = run.log.parent / "vault-audit.log.20261127T120000Z.gz"
        other = run.log.parent / "notes.gz"
        for path in (old, recent, other):
            path.write_bytes(gzip.compress(b""))
        day_and_a_bit = time.time() - 25 * 3600
        for path in (old, other):
            os.utime(path, (day_and_a_bit, day_and_a_bit))
        assert run.loop.round() == []
        assert not old.exists()
        assert recent.exists()
        assert other.exists()  # not a rotated log

    def test_nothing_is_rotated_while_vault_is_not_running(self, run: RotationRun) -> None:
        run.log.write_text("entry 1\n" * 1000)
        run.next_day()
        assert run.loop.rounds(3) == []
        assert run.rotated() == []


def test_a_renewal_and_a_rotation_each_signal_once(tmp_path: Path) -> None:
    run = RotationRun(tmp_path, tls=True)
    try:
        run.start_server(pause=0.5)
        wait_until(lambda: run.log.exists())
        assert run.loop.rounds(3) == []
        assert run.certificates is not None
        renew_certificate(run.certificates, 2)
        assert run.loop.round() == [run.signalled("certificate changed")]
        assert run.loop.rounds(3) == []
        assert run.server.handled(1) == 1
        assert run.rotated() == []
        # Both in one round: one signal for both.
        renew_certificate(run.certificates, 3)
        run.next_day()
        assert run.loop.round() == [run.signalled(f"certificate changed, rotated {run.log}")]
        assert run.loop.rounds(3) == []
        assert run.server.handled(2) == 2
    finally:
        run.stop()


# ---- the spec


def test_what_each_tier_keeps() -> None:
    assert [(rotation := audit_log_rotation(spec_of(stack))) and (rotation.files, rotation.retention_days)
            for stack in ("dev", "staging", "prod")] == [
        (("/vault/audit/vault-audit.log",), 1), (("/vault/audit/vault-audit.log",), 7),
        (("/vault/audit/vault-audit.log",), 30)]


@pytest.mark.parametrize(("size", "expected"), [("64Ki", 65536), ("100Mi", 104857600), ("3Gi", 3221225472)])
def test_the_file_size_is_read_in_bytes(size: str, expected: int) -> None:
    rotation = spec_of("prod", {"vault-platform:audit.rotation.maxFileSize": size}).audit.rotation
    assert rotation is not None
    assert rotation.max_file_bytes == expected


@pytest.mark.parametrize(("changes", "key", "words"), [
    ({"vault-platform:audit.rotation.maxFileSize": "100M"}, "audit.rotation.maxFileSize", "Ki, Mi or Gi"),
    ({"vault-platform:audit.rotation.maxFileSize": "1.5Gi"}, "audit.rotation.maxFileSize", "Ki, Mi or Gi"),
    ({"vault-platform:audit.rotation.maxFileSize": "1048576"}, "audit.rotation.maxFileSize", "Ki, Mi or Gi"),
    ({"vault-platform:audit.rotation.retention": "12h"}, "audit.rotation.retention", "whole number of days"),
    ({"vault-platform:audit.rotation.keep": 3}, "audit.rotation.keep", "not a known key"),
])
def test_refused(changes: dict[str, object], key: str, words: str) -> None:
    assert words in str(refusal("prod", changes, f"vault-platform:{key}"))
