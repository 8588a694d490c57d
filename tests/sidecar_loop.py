"""The SIGHUP sidecar's script run under a real POSIX shell, one round at a time, beside a stand-in
server: what the tests of the certificate reload and of the audit log rotation share.

The script is the one the chart runs, unchanged. Only ``sleep``, the wait between rounds, is a
stand-in on its ``PATH``: it prints a marker and returns when the test asks for the next round. So a
test decides when each round runs, and reads exactly the lines that round logged (every SIGHUP the
loop sends is logged); nothing depends on how fast a loaded machine runs the loop. With a ``clock``
(seconds since the epoch, in a file that a stand-in ``date`` reads), each wait also moves the clock
on by the script's interval, as the real wait would: the rounds are as far apart as in the chart."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

WAITING = "-- waiting for the next round"
"""What the stand-in ``sleep`` prints before it waits: the round before it is over."""

STUCK_SECONDS = 60
"""A loop or server that shows nothing for this long is stuck: the test fails instead of hanging."""


class SidecarLoop:
    """The script under ``/bin/sh``; :meth:`round` runs one round and returns the lines it logged."""

    def __init__(self, script: str, directory: Path, clock: Path | None = None) -> None:
        bin_dir = directory / "bin"
        bin_dir.mkdir(exist_ok=True)
        # EOF on stdin (see stop) makes `sleep` fail, which ends `while sleep ...; do`.
        tools = {"sleep": f'#!/bin/sh\necho "{WAITING}"\nread -r _ || exit\n'}
        if clock is not None:
            tools["sleep"] += f'echo $(($(cat "{clock}") + ${{1%.*}})) > "{clock}"\n'
            date = shutil.which("date") or "/bin/date"
            tools["date"] = f'#!/bin/sh\nexec {date} -d "@$(cat "{clock}")" "$@"\n'
        for name, text in tools.items():
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)
        environment = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        self.process = subprocess.Popen(["/bin/sh", "-c", script], env=environment, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.log: list[str] = []
        """Every line the loop logged so far."""
        self._until_waiting()  # its set-up, before the first round

    def round(self) -> list[str]:
        """Runs one round (from the end of one wait to the start of the next); the lines it logged."""
        assert self.process.stdin is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        return self._until_waiting()

    def rounds(self, count: int) -> list[str]:
        """Runs ``count`` rounds; every line they logged."""
        return [line for _ in range(count) for line in self.round()]

    def stop(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=STUCK_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _until_waiting(self) -> list[str]:
        assert self.process.stdout is not None
        watchdog = threading.Timer(STUCK_SECONDS, self.process.kill)
        watchdog.start()
        lines: list[str] = []
        try:
            while (line := self.process.stdout.readline()) != f"{WAITING}\n":
                if not line:
                    raise AssertionError(f"the loop ended (exit status {self.process.wait()}): {lines}")
                lines.append(line.rstrip("\n"))
        finally:
            watchdog.cancel()
        self.log += lines
        return lines


class StandInServer:
    """A stand-in for Vault: a copy of the shell under its own name, so that ``pgrep -x`` finds it and
    nothing else (the name is unique to this test process). Like Vault, it forks children (its
    commands) and handles SIGHUP once running, here by running ``on_hangup`` and then appending a line
    to ``hangups``."""

    def __init__(self, directory: Path, prefix: str) -> None:
        self.name = f"{prefix}{os.getpid()}"  # at most 15 characters: what pgrep matches
        self.binary = directory / self.name
        shutil.copy(shutil.which("sh") or "/bin/sh", self.binary)
        self.hangups = directory / "hangups"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, body: str, on_hangup: str = ":") -> None:
        """Runs ``body`` (which must return to the shell often: a trap runs between commands)."""
        # Popen returns once the copy is exec'd: `pgrep` sees it under its name from here on.
        self.process = subprocess.Popen([str(self.binary), "-c",
                                         f"trap '{on_hangup}; echo hup >> \"{self.hangups}\"' HUP; {body}"])

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def hangups_count(self) -> int:
        return len(self.hangups.read_text().splitlines()) if self.hangups.exists() else 0

    def handled(self, count: int) -> int:
        """The SIGHUPs handled once ``count`` of them (the number the loop logged) have been."""
        wait_until(lambda: self.hangups_count() >= count)
        return self.hangups_count()


def renew_certificate(directory: Path, serial: int) -> None:
    """New ``tls.crt`` and ``tls.key`` in ``directory``, each swapped in atomically, as the kubelet's."""
    for name in ("tls.crt", "tls.key"):
        staged = directory / f".{name}"
        staged.write_text(f"{name} {serial}")
        staged.rename(directory / name)


def wait_until(condition: Callable[[], bool]) -> None:
    """Waits for something the processes under test do by themselves; fails when they are stuck."""
    deadline = time.monotonic() + STUCK_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not so after {STUCK_SECONDS} s")
        time.sleep(0.005)
