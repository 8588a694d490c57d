"""The audit log rotation in the SIGHUP sidecar, run under a real POSIX shell with its real tools
(``stat``, ``mv``, ``gzip``, ``find``, ``pgrep``) beside a stand-in server: a copy of the shell under
its own name that appends numbered lines to the log without pause and, like Vault's file audit
device, reopens the log on SIGHUP. Rotation by size, once a day, gzip, retention, and no line lost.
The spec section and the Helm values are tested in ``test_helm_values`` and here."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.render.helm_values import AuditLogRotation, audit_log_rotation, sighup_script
from tests.support import refusal, spec_of

ROUND = 0.05


class RotationRun:
    """The loop for one log (and a certificate when ``tls``) beside the stand-in server."""

    def __init__(self, directory: Path, *, max_bytes: int = 2000, retention_days: int = 1, tls: bool = False) -> None:
        self.directory = directory
        self.log = directory / "audit" / "vault-audit.log"
        self.log.parent.mkdir()
        self.hangups = directory / "hangups"
        self.name = f"vrot{os.getpid() % 100000}"
        self.binary = directory / self.name
        shutil.copy(shutil.which("sh") or "/bin/sh", self.binary)
        # `date -u +%Y%m%d` reads the day from a file, so that a test can move to the next day.
        self.day = directory / "day"
        self.day.write_text("20261128\n")
        bin_dir = directory / "bin"
        bin_dir.mkdir()
        real_date = shutil.which("date") or "/bin/date"
        (bin_dir / "date").write_text(f'#!/bin/sh\nif [ "$2" = "+%Y%m%d" ]; then cat {self.day}; '
                                      f'else exec {real_date} "$@"; fi\n')
        (bin_dir / "date").chmod(0o755)
        certificates = None
        if tls:
            certificates = directory / "tls"
            certificates.mkdir()
            for name in ("tls.crt", "tls.key"):
                (certificates / name).write_text(f"{name} 1")
        self.certificates = certificates
        rotation = AuditLogRotation(files=(str(self.log),), max_bytes=max_bytes, retention_days=retention_days)
        script = sighup_script(str(certificates) if certificates else None, rotation, self.name, ROUND)
        environment = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        self.loop = subprocess.Popen(["/bin/sh", "-c", script], env=environment,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.server: subprocess.Popen[bytes] | None = None

    def start_server(self, pause: float = 0.002) -> None:
        log = self.log
        self.server = subprocess.Popen([str(self.binary), "-c", (
            f'exec 3>>"{log}"; trap \'exec 3>>"{log}"; echo hup >> "{self.hangups}"\' HUP; i=0; '
            f'while :; do i=$((i+1)); echo "entry $i" >&3; sleep {pause}; done')])

    def hangups_count(self) -> int:
        return len(self.hangups.read_text().splitlines()) if self.hangups.exists() else 0

    def wait_for(self, condition: object, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
            time.sleep(0.01)

    def rotated(self) -> list[Path]:
        return sorted(p for p in self.log.parent.iterdir() if p.name != self.log.name)

    def stop(self) -> str:
        for process in (self.server, self.loop):
            if process is not None:
                process.kill()
                process.wait()
        return (self.loop.stdout.read() if self.loop.stdout else b"").decode()

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
    def test_a_log_past_its_size_is_rotated_gzipped_and_no_entry_is_lost(self, run: RotationRun) -> None:
        run.start_server()
        run.wait_for(lambda: sum(p.suffix == ".gz" for p in run.rotated()) >= 2)
        output = run.stop()
        rotated = run.rotated()
        assert sum(path.suffix == ".gz" for path in rotated) >= 2
        assert all(path.name.startswith("vault-audit.log.2") for path in rotated)
        assert run.hangups_count() >= 2
        assert f"rotated {run.log}: sent SIGHUP to {run.name}" in output
        entries = run.entries()
        assert entries == list(range(1, len(entries) + 1))  # in order, none missing, none twice

    def test_a_small_log_is_rotated_once_a_day(self, run: RotationRun) -> None:
        run.start_server(pause=0.5)  # a few entries only: far below the size
        run.wait_for(lambda: run.log.exists() and run.log.stat().st_size > 0)
        time.sleep(10 * ROUND)
        assert run.rotated() == []
        run.day.write_text("20261129\n")
        run.wait_for(lambda: run.hangups_count() >= 1)
        time.sleep(10 * ROUND)
        assert run.hangups_count() == 1  # once for the new day, not every round
        assert len(run.rotated()) == 1

    def test_rotated_logs_past_the_retention_are_deleted(self, run: RotationRun) -> None:
        old = run.log.parent / "vault-audit.log.20261126T000000Z.gz"
        recent = run.log.parent / "vault-audit.log.20261127T120000Z.gz"
        other = run.log.parent / "notes.gz"
        for path in (old, recent, other):
            path.write_bytes(gzip.compress(b""))
        day_and_a_bit = time.time() - 25 * 3600
        for path in (old, other):
            os.utime(path, (day_and_a_bit, day_and_a_bit))
        run.wait_for(lambda: not old.exists())
        assert not old.exists()
        assert recent.exists()
        assert other.exists()  # not a rotated log

    def test_nothing_is_rotated_while_vault_is_not_running(self, run: RotationRun) -> None:
        run.log.write_text("entry 1\n" * 1000)
        time.sleep(10 * ROUND)
        assert run.rotated() == []


def test_a_renewal_and_a_rotation_each_signal_once(tmp_path: Path) -> None:
    run = RotationRun(tmp_path, tls=True)
    try:
        run.start_server(pause=0.5)
        run.wait_for(lambda: run.log.exists())
        time.sleep(10 * ROUND)
        assert run.hangups_count() == 0
        assert run.certificates is not None
        for name in ("tls.crt", "tls.key"):
            staged = run.certificates / f".{name}"
            staged.write_text(f"{name} 2")
            staged.rename(run.certificates / name)
        run.wait_for(lambda: run.hangups_count() >= 1)
        time.sleep(10 * ROUND)
        assert run.hangups_count() == 1
        assert run.rotated() == []
    finally:
        output = run.stop()
    assert f"certificate changed: sent SIGHUP to {run.name}" in output


# ---- the spec


def test_what_each_tier_keeps() -> None:
    assert [(rotation := audit_log_rotation(spec_of(stack))) and (rotation.files, rotation.retention_days)
            for stack in ("dev", "staging", "prod")] == [
        (("/vault/audit/vault-audit.log",), 1), (("/vault/audit/vault-audit.log",), 7),
        (("/vault/audit/vault-audit.log",), 30)]


@pytest.mark.parametrize(("changes", "key", "words"), [
    ({"vault-platform:audit.rotation.maxFileSize": "100M"}, "audit.rotation.maxFileSize", "Ki, Mi or Gi"),
    ({"vault-platform:audit.rotation.retention": "12h"}, "audit.rotation.retention", "whole number of days"),
    ({"vault-platform:audit.rotation.keep": 3}, "audit.rotation.keep", "not a known key"),
])
def test_refused(changes: dict[str, object], key: str, words: str) -> None:
    assert words in str(refusal("prod", changes, f"vault-platform:{key}"))
