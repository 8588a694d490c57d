"""A throwaway PostgreSQL server for the tests: its own data directory, its socket in that
directory, a free TCP port on 127.0.0.1, SCRAM-SHA-256 passwords, and ``pg_hba.conf`` allowing
only the bootstrap superuser over the socket (``trust``) and everyone over TCP with
``scram-sha-256``. Nothing else is assumed to be running, and the Debian cluster is never touched.

PostgreSQL refuses to run as root: when the tests run as root (CI), every server command runs as
the ``postgres`` system user (``runuser``), which then owns the data directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import psycopg

SUPERUSER = "bootstrap"
SERVER_USER = "postgres"
PREFERRED_MAJOR = "15"
# Debian's layout; POSTGRES_BINDIR points elsewhere when the binaries live somewhere else.
DEBIAN_BINDIRS = "/usr/lib/postgresql/*/bin"


def find_bindir() -> Path:
    """The directory of ``initdb``, ``pg_ctl`` and ``postgres``: PostgreSQL 15 when present (the
    statements are written for its CREATEROLE semantics), else the newest installed."""
    configured = os.environ.get("POSTGRES_BINDIR")
    if configured:
        return Path(configured)
    found = sorted(Path(p) for p in glob.glob(DEBIAN_BINDIRS) if (Path(p) / "initdb").is_file())
    if not found:
        raise RuntimeError("PostgreSQL server binaries are missing: install Debian's 'postgresql' "
                           "package (bin/test does so when it may) or set POSTGRES_BINDIR")
    preferred = [p for p in found if p.parent.name == PREFERRED_MAJOR]
    return preferred[0] if preferred else max(found, key=lambda p: int(p.parent.name))


def _scratch_parent() -> str | None:
    """A RAM-backed directory when the machine has one (DDL on a throwaway cluster is disk-bound),
    else the default temporary directory."""
    shm = Path("/dev/shm")  # noqa: S108 - only the parent of a private mkdtemp directory
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresServer:
    """One server process; :meth:`start` and :meth:`stop` (idempotent, also removes the directory)."""

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self.as_root = os.geteuid() == 0
        self.directory = Path(tempfile.mkdtemp(prefix="pgtest-", dir=_scratch_parent()))
        self.data = self.directory / "data"
        self.port = 0
        self.running = False

    def _run(self, *command: str) -> subprocess.CompletedProcess[str]:
        argv: Sequence[str] = [str(self.bindir / command[0]), *command[1:]]
        if self.as_root:
            argv = ["runuser", "-u", SERVER_USER, "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result

    def start(self) -> None:
        if self.as_root:
            account = pwd.getpwnam(SERVER_USER)
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=reject", "--no-sync",
                  "--no-instructions", "--encoding=UTF8", "--locale=C.UTF-8")
        (self.data / "pg_hba.conf").write_text(
            f"local all {SUPERUSER} trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        # Throwaway data: durability settings off, for a fast start and fast CREATE DATABASE.
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.directory}'",
            "password_encryption": "'scram-sha-256'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "50",
            "log_min_messages": "warning",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        for attempt in range(3):
            self.port = free_port()
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.directory / "server.log"),
                          "-o", f"-p {self.port}", "-w", "-t", "30", "start")
            except RuntimeError:
                if attempt == 2:
                    raise RuntimeError(f"PostgreSQL did not start:\n{self.log()}") from None
                continue
            self.running = True
            return

    def log(self) -> str:
        path = self.directory / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stops the server (fast shutdown: sessions are cut) and removes its directory."""
        if self.running:
            self.running = False
            with contextlib.suppress(RuntimeError):  # already gone: nothing to stop
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)

    def superuser(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit connection as the bootstrap superuser, over the socket."""
        return psycopg.connect(host=str(self.directory), port=self.port, user=SUPERUSER,
                               dbname=dbname, autocommit=True)

    def connect(self, user: str, password: str, dbname: str) -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit connection over TCP, authenticated with SCRAM-SHA-256 (refused otherwise)."""
        return psycopg.connect(host="127.0.0.1", port=self.port, user=user, password=password,
                               dbname=dbname, autocommit=True, require_auth="scram-sha-256",
                               connect_timeout=10)
