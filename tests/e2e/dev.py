"""The dev stack applied by the real CLI to a loopback cluster where pods become Ready without running:
Vault (Raft) runs beside the cluster in a mount namespace of its own, which gives it what its pod would
have (the in-cluster PostgreSQL Service's name, pointing at a real PostgreSQL 15; the audit volume; its
service account's CA), and the in-cluster PostgreSQL's init script runs on that server as the image
would. :func:`applied_dev`, for the test modules that need it."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client as kubernetes_client

from environment import EnvironmentSpec
from environment.database import DEV_POSTGRES_NAMESPACE, DEV_POSTGRES_PORT
from platformctl.adapters.engine import ROOT
from platformctl.adapters.stackfile import read_stack, stack_spec
from render.admin_setup import IN_CLUSTER_SUPERUSER
from tests.e2e.issuer import OidcIssuer
from tests.e2e.project import PulumiProject
from tests.e2e.servers import (
    Cluster,
    VaultServer,
    api_server,
    audit_log_entries,
    ca_bundle,
    loopback_address_free_on,
    running,
)
from tests.e2e.tools import Tools
from tests.postgres.server import PostgresServer

PLACEHOLDER = "placeholder-set-by-the-e2e-test"
SERVICE_ACCOUNT_DIRECTORY = Path("/var/run/secrets/kubernetes.io/serviceaccount")
"""Where a pod's service account token and the cluster's CA are (and where Vault's Kubernetes auth reads them)."""
MOUNT_POINTS_IN_USE = Path(tempfile.gettempdir()) / "vault-platform-e2e-mount-points.lock"
"""Locked shared by every test while its Vault mounts on this machine's paths."""
MOUNT_POINTS_BOOK = Path(tempfile.gettempdir()) / "vault-platform-e2e-mount-points.created"
"""The directories the tests created to mount on, deepest first; locked while one is created or removed."""


def stack_secrets(stack: str, root: Path = ROOT) -> dict[str, str]:
    """A placeholder for every stack secret the stack file references (what `bin/plan` lists)."""
    return {key: PLACEHOLDER for key in read_stack(stack, root).placeholders}


class DevPostgresInit:
    """What the in-cluster PostgreSQL's container does on its first start, for a real PostgreSQL beside the
    cluster (pods do not run here): once the program's Secret exists, its init script runs as the image's
    superuser in the database the Deployment names (the postgres image's docker-entrypoint-initdb.d)."""

    def __init__(self, cluster: Cluster, postgres: PostgresServer, connection_name: str, database: str) -> None:
        self.core = kubernetes_client.CoreV1Api(cluster.api())
        self.postgres = postgres
        self.secret = f"{connection_name}-credentials"
        self.database = database
        self.done = threading.Event()
        self.stopping = threading.Event()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        with self.postgres.superuser() as connection:
            connection.execute(f'CREATE ROLE "{IN_CLUSTER_SUPERUSER}" SUPERUSER')
            connection.execute(f'CREATE DATABASE "{self.database}" OWNER "{IN_CLUSTER_SUPERUSER}"')
        self.thread.start()

    def _watch(self) -> None:
        try:
            while not self.stopping.wait(0.1):
                with contextlib.suppress(kubernetes_client.ApiException):
                    secret = self.core.read_namespaced_secret(self.secret, DEV_POSTGRES_NAMESPACE)
                    script = base64.b64decode((secret.data or {})["10-vault-admin.sql"]).decode()
                    with self.postgres.superuser(self.database) as connection:
                        connection.execute(f'SET ROLE "{IN_CLUSTER_SUPERUSER}"')
                        connection.execute(script.encode())
                    self.done.set()
                    return
        except BaseException as error:  # reported by the test
            self.failure = error

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(10)


def audit_directory(spec: EnvironmentSpec) -> Path:
    """Where the dev stack's file audit device writes inside the Vault pod (the chart's audit volume)."""
    (path,) = [device.file_path for device in spec.audit.devices if (device.file_path or "").startswith("/")]
    assert path is not None
    return Path(path)


@dataclass
class AppliedDev:
    """The dev stack as ``pulumi up`` left it, and the servers it runs against."""

    project: PulumiProject
    cluster: Cluster
    vault: VaultServer
    postgres: PostgresServer
    issuer: OidcIssuer
    spec: EnvironmentSpec
    audit_log: Path
    """Vault's file audit log (the dev stack's ``file`` device), as this machine sees it."""

    def audit_entries(self) -> list[dict[str, Any]]:
        return audit_log_entries(self.audit_log)


NEEDS_ROOT = ("the dev stack's up needs root: Vault runs in a mount namespace of its own, with the in-cluster "
              "names and the audit volume of its pod (CI runs as root)")
NEEDS_KWOK = ("the dev stack's up needs a cluster whose pods become Ready without running (kube-local's kwok): "
              "the chart's servers would never be Ready here")


@contextlib.contextmanager
def applied_dev(tools: Tools, cluster: Cluster, chart_repository: Mapping[str, str], directory: Path,
                source: Path | None = None) -> Iterator[AppliedDev]:
    """The dev stack applied from empty by ``pulumi up`` (the bootstrap run: the stack's token), by this
    working tree's program or ``source``'s (a release's), its servers stopped after. The in-cluster
    PostgreSQL's stand-in listens on its Service's port at a loopback address of its own."""
    database_address = loopback_address_free_on(DEV_POSTGRES_PORT)
    spec = stack_spec(read_stack("dev"))
    assert spec.database is not None
    (connection,) = [c for c in spec.database.connections if c.in_cluster]
    audit_log = audit_directory(spec)
    (directory / "audit").mkdir(parents=True)
    # What Vault's pod has: its audit volume, and its service account's CA (the Kubernetes auth method reads
    # it when its config is written: vault-plugin-auth-kubernetes, path_config.go, updateTLSConfig).
    service_account = directory / "serviceaccount"
    service_account.mkdir()
    (service_account / "ca.crt").write_text(api_server(cluster.kubeconfig)[1])
    pod_paths = {directory / "audit": audit_log.parent, service_account: SERVICE_ACCOUNT_DIRECTORY}
    # The in-cluster Service's name, for Vault, at a loopback address of its own on PostgreSQL's port.
    postgres = PostgresServer(address=database_address, port=DEV_POSTGRES_PORT)
    issuer = OidcIssuer(directory / "issuer")
    vault = VaultServer(tools.which("vault"), directory / "vault", hosts={connection.host: postgres.address},
                        mounts=pod_paths)
    init = DevPostgresInit(cluster, postgres, connection.name, connection.database)
    with mount_points(pod_paths.values()), running(postgres, issuer, vault, init):
        chart_ca = Path(chart_repository["SSL_CERT_FILE"]).read_text() if "SSL_CERT_FILE" in chart_repository else ""
        bundle = ca_bundle(directory, issuer.tls.ca_pem, chart_ca)
        project = PulumiProject(tools, directory / "cli", {
            "KUBECONFIG": str(cluster.kubeconfig), **chart_repository, "SSL_CERT_FILE": str(bundle)}, source=source)
        point_logins_at(project, issuer)
        project.init("dev", {"vault:address": vault.address},
                     {**stack_secrets("dev", project.root), "vault:token": vault.root_token})
        project.up("dev")
        assert init.failure is None
        assert init.done.is_set()
        yield AppliedDev(project, cluster, vault, postgres, issuer, spec, directory / "audit" / audit_log.name)


@contextlib.contextmanager
def mount_points(paths: Iterable[Path]) -> Iterator[None]:
    """Empty directories to mount on in Vault's namespace; those that did not exist are removed by the last
    test that uses them. Tests in other workers use the same ones at the same time, and removing a
    directory another namespace has a mount on detaches that mount there (Linux, since 3.18): a Vault of
    another test then lost its service account's ``ca.crt``. So every user holds a shared lock on
    :data:`MOUNT_POINTS_IN_USE` while it runs; whoever finds itself alone at the end (an exclusive lock
    it gets at once) removes what the tests created, as they recorded it. :data:`MOUNT_POINTS_BOOK`
    orders the creating, recording and removing."""
    with MOUNT_POINTS_BOOK.open("a+") as book, MOUNT_POINTS_IN_USE.open("a") as in_use:
        fcntl.flock(book, fcntl.LOCK_EX)
        for path in paths:
            missing = [directory for directory in (path, *path.parents) if not directory.exists()]
            path.mkdir(parents=True, exist_ok=True)
            book.write("".join(f"{directory}\n" for directory in missing))  # deepest first
        book.flush()
        fcntl.flock(in_use, fcntl.LOCK_SH)
        fcntl.flock(book, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(book, fcntl.LOCK_EX)
            try:
                fcntl.flock(in_use, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # another test still uses them, and removes them after
            else:
                book.seek(0)
                for line in book.read().splitlines():
                    with contextlib.suppress(OSError):
                        Path(line).rmdir()
                book.truncate(0)


def point_logins_at(project: PulumiProject, issuer: OidcIssuer) -> None:
    """GitHub's issuer and the identity provider cannot be reached here, and Vault reads their discovery
    documents as soon as the methods' config is written: both point at a loopback issuer, with its CA."""
    config = project.stack_config("dev")
    github: dict[str, Any] = {**config["vault-platform:githubActions"], "issuer": issuer.url,
                              "issuerCaPem": issuer.tls.ca_pem}
    people: dict[str, Any] = {**config["vault-platform:oidc"], "discoveryUrl": issuer.url,
                              "discoveryCaPem": issuer.tls.ca_pem}
    project.edit_stack("dev", {"vault-platform:githubActions": github, "vault-platform:oidc": people})


