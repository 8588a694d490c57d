"""A throwaway PostgreSQL server for the tests: its own data directory, its socket in that
directory, a free TCP port on 127.0.0.1, SCRAM-SHA-256 passwords, and ``pg_hba.conf`` allowing
only the bootstrap superuser over the socket (``trust``) and everyone over TCP with
``scram-sha-256``. Nothing else is assumed to be running, and the Debian cluster is never touched.
With :class:`ServerTls` it also serves TLS, with a certificate from a throwaway CA.

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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class ServerTls:
    """A CA and a server certificate it signed for one DNS name (PEM)."""

    ca_pem: str
    """The CA certificate: what a client verifies the server with."""
    certificate_pem: str
    """The server's certificate, for :attr:`host` only."""
    key_pem: str
    """The server's private key."""
    host: str
    """The one DNS name the certificate carries."""

    @classmethod
    def throwaway(cls, host: str, ca_name: str = "vault-platform test CA") -> ServerTls:
        """A fresh P-256 CA (valid a day) and a server certificate for ``host``."""
        now = datetime.now(UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
        ca = (x509.CertificateBuilder().subject_name(ca_subject).issuer_name(ca_subject)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                           data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                           crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = (x509.CertificateBuilder()
                       .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
                       .issuer_name(ca_subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
                       .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
                       .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                       .sign(ca_key, hashes.SHA256()))
        return cls(
            ca_pem=ca.public_bytes(serialization.Encoding.PEM).decode(),
            certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
            key_pem=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode(),
            host=host,
        )


class PostgresServer:
    """One server process; :meth:`start` and :meth:`stop` (idempotent, also removes the directory);
    :meth:`pause` and :meth:`resume` in between keep its data."""

    def __init__(self, bindir: Path | None = None, tls: ServerTls | None = None, address: str = "127.0.0.1",
                 port: int | None = None) -> None:
        """``address`` (a loopback address) and ``port`` (else a free one) are where it listens over TCP."""
        self.bindir = bindir or find_bindir()
        self.tls = tls
        self.address = address
        self.fixed_port = port
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
            "host all all 127.0.0.0/8 scram-sha-256\n"  # clients connect from 127.0.0.1 whatever it listens on
        )
        # Throwaway data: durability settings off, for a fast start and fast CREATE DATABASE.
        settings = {
            "listen_addresses": f"'{self.address}'",
            "unix_socket_directories": f"'{self.directory}'",
            "password_encryption": "'scram-sha-256'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "50",
            "log_min_messages": "warning",
        }
        if self.tls is not None:
            settings.update(ssl="on", ssl_cert_file=f"'{self._server_file('server.crt', self.tls.certificate_pem)}'",
                            ssl_key_file=f"'{self._server_file('server.key', self.tls.key_pem)}'")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        for attempt in range(3):
            self.port = self.fixed_port or free_port()
            try:
                self._pg_ctl_start()
            except RuntimeError:
                if attempt == 2:
                    raise RuntimeError(f"PostgreSQL did not start:\n{self.log()}") from None
                continue
            self.running = True
            return

    def _server_file(self, name: str, content: str) -> Path:
        """A file only the server's user may read (PostgreSQL refuses a key others can read)."""
        path = self.directory / name
        path.write_text(content)
        path.chmod(0o600)
        if self.as_root:
            account = pwd.getpwnam(SERVER_USER)
            os.chown(path, account.pw_uid, account.pw_gid)
        return path

    def log(self) -> str:
        path = self.directory / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _pg_ctl_start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.directory / "server.log"),
                  "-o", f"-p {self.port}", "-w", "-t", "30", "start")

    def _pg_ctl_stop(self) -> None:
        """Fast shutdown: sessions are cut."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")

    def stop(self) -> None:
        """Stops the server (fast shutdown: sessions are cut) and removes its directory."""
        if self.running:
            self.running = False
            with contextlib.suppress(RuntimeError):  # already gone: nothing to stop
                self._pg_ctl_stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def pause(self) -> None:
        """Stops the server as :meth:`stop` does, but keeps its data: a database down for a while."""
        self._pg_ctl_stop()
        self.running = False

    def resume(self) -> None:
        """Starts a paused server again, on its data and port."""
        self._pg_ctl_start()
        self.running = True

    def superuser(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit connection as the bootstrap superuser, over the socket."""
        return psycopg.connect(host=str(self.directory), port=self.port, user=SUPERUSER,
                               dbname=dbname, autocommit=True)

    def connect(self, user: str, password: str, dbname: str, **tls: str) -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit connection over TCP, authenticated with SCRAM-SHA-256 (refused otherwise);
        without TLS unless ``tls`` gives libpq's ``sslmode`` and friends."""
        conninfo = psycopg.conninfo.make_conninfo(
            host=self.address, port=self.port, user=user, password=password, dbname=dbname,
            require_auth="scram-sha-256", connect_timeout=10, **({"sslmode": "disable"} | tls))
        return psycopg.connect(conninfo, autocommit=True)
