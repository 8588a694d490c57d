"""Real servers on loopback for the end-to-end tests, each in a temporary directory, on free ports,
stopped by PID: Vault (Raft storage, initialized and unsealed), a Kubernetes API (``kube-local.sh``, or
an existing cluster, never stopped), an HTTPS file server (the chart's repository, an OIDC issuer) and
an HTTPS proxy that sends a public host name to it."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import select
import shlex
import signal
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import hvac  # type: ignore[import-untyped]
import yaml
from kubernetes import client as kubernetes_client
from kubernetes import config as kubernetes_config

from tests.postgres.server import ServerTls, free_port

SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def loopback_address_free_on(port: int) -> str:
    """A loopback address (127.0.0.0/8) of its own where ``port`` is free: a server that must listen on a
    fixed port (a Service's, which the stack names) gets one that no other test or test session holds."""
    for _ in range(100):
        address = f"127.{secrets.randbelow(254) + 1}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((address, port))
            except OSError:
                continue
            return address
    raise RuntimeError(f"no loopback address with port {port} free")


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL after ``timeout``: by the PID the test started, nothing else."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def ca_bundle(directory: Path, *extra_pems: str) -> Path:
    """The system's CAs plus throwaway ones, for ``SSL_CERT_FILE`` (which replaces the system roots)."""
    path = directory / "ca-bundle.pem"
    system = SYSTEM_CA_BUNDLE.read_text() if SYSTEM_CA_BUNDLE.is_file() else ""
    path.write_text(system + "".join(pem if pem.endswith("\n") else pem + "\n" for pem in extra_pems))
    return path


class VaultServer:
    """``vault server`` with integrated Raft storage, as production runs it (no ``-dev``): initialized with
    one key share and unsealed by :meth:`start`; :attr:`root_token` is the initial root token."""

    def __init__(self, binary: Path, directory: Path, hosts: Mapping[str, str] | None = None,
                 mounts: Mapping[Path, Path] | None = None, stands_in_for: VaultServer | None = None) -> None:
        """``hosts`` (name -> loopback address) and ``mounts`` (a directory of this machine -> where Vault
        sees it) give the process a view of its own (a private mount namespace: nothing else sees them),
        as a server inside the cluster would have: the Services' names, its audit volume.
        ``stands_in_for``: a stopped server whose address this one takes (a restore)."""
        self.binary = binary
        self.directory = directory
        self.hosts = dict(hosts or {})
        self.mounts = dict(mounts or {})
        self.stands_in_for = stands_in_for
        self.process: subprocess.Popen[bytes] | None = None
        # A loopback address of its own (127.0.0.0/8): its port stays free while the server is stopped
        # and started again, whatever ports other tests' servers and connections take on 127.0.0.1
        # meanwhile (a restart on 127.0.0.1 once found its port taken: "bind: address already in use").
        self.host = ""
        self.port = 0
        self.root_token = ""
        self.unseal_key = ""

    @property
    def address(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self, token: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.address, token=token if token is not None else self.root_token, timeout=10)

    def start(self) -> None:
        (self.directory / "raft").mkdir(parents=True, exist_ok=True)
        if self.stands_in_for is not None:
            self.host, self.port = self.stands_in_for.host, self.stands_in_for.port
        else:
            self.port = free_port()
            self.host = loopback_address_free_on(self.port)
        cluster_port = free_port(self.host)
        config = self.directory / "vault.hcl"
        config.write_text(
            f'storage "raft" {{\n  path = "{self.directory / "raft"}"\n  node_id = "e2e-0"\n}}\n'
            f'listener "tcp" {{\n  address = "{self.host}:{self.port}"\n'
            f'  cluster_address = "{self.host}:{cluster_port}"\n  tls_disable = true\n}}\n'
            f'api_addr = "http://{self.host}:{self.port}"\ncluster_addr = "https://{self.host}:{cluster_port}"\n'
            'disable_mlock = true\n')
        self.launch()
        # Raft's first leader election and the keyring's first write (fsync'd) happen in this call: seconds
        # on a loaded 2-core machine, past the client's usual 10 s at times.
        client = hvac.Client(url=self.address, token="", timeout=120)
        answer = client.sys.initialize(secret_shares=1, secret_threshold=1)
        self.root_token, self.unseal_key = answer["root_token"], answer["keys"][0]
        self.unseal()

    def launch(self) -> None:
        """Starts the process on the existing storage (sealed, until :meth:`unseal`)."""
        log = (self.directory / "vault.log").open("ab")
        self.process = subprocess.Popen(
            [*self._namespace(), str(self.binary), "server", f"-config={self.directory / 'vault.hcl'}"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "VAULT_LOG_LEVEL": "warn"},
            start_new_session=True)
        wait_until(self._answers, 30, f"Vault on port {self.port} (log: {self.directory / 'vault.log'})")

    def _namespace(self) -> list[str]:
        """The command that runs Vault in its own mount namespace with :attr:`hosts` and :attr:`mounts`
        (``unshare`` keeps the PID: the shell it starts ``exec``s Vault)."""
        if not self.hosts and not self.mounts:
            return []
        hosts = self.directory / "hosts"
        hosts.write_text("127.0.0.1 localhost\n" + "".join(f"{ip} {name}\n" for name, ip in self.hosts.items()))
        binds = {hosts: Path("/etc/hosts"), **self.mounts}
        script = " && ".join(f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(target))}"
                             for source, target in binds.items())
        return ["unshare", "--mount", "--", "sh", "-c", f'{script} && exec "$@"', "vault-in-namespace"]

    def unseal(self) -> None:
        self.client(token="").sys.submit_unseal_key(self.unseal_key)
        wait_until(lambda: self._health() == 200, 30, "Vault to become the active Raft leader")

    def _health(self) -> int | None:
        address = (self.host, self.port)
        with contextlib.suppress(OSError, IndexError, ValueError), socket.create_connection(address, 2) as connection:
            connection.sendall(b"GET /v1/sys/health HTTP/1.0\r\n\r\n")
            return int(connection.recv(64).split(b" ")[1])
        return None

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"vault server exited: {(self.directory / 'vault.log').read_text()[-2000:]}")
        return self._health() is not None

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None


def api_server(kubeconfig: Path) -> tuple[str, str]:
    """The URL and CA (PEM) of the first cluster a kubeconfig names."""
    cluster = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]
    if "certificate-authority-data" in cluster:
        return cluster["server"], base64.b64decode(cluster["certificate-authority-data"]).decode()
    return cluster["server"], Path(cluster["certificate-authority"]).read_text()


class Cluster:
    """A Kubernetes API for the tests: :attr:`kubeconfig` is its admin kubeconfig; :attr:`runs_pods` says
    whether its pods really run (then a pod whose image cannot start here is never Ready)."""

    runs_pods: bool

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def api(self) -> kubernetes_client.ApiClient:
        """The official client, as the cluster's admin."""
        return cast(kubernetes_client.ApiClient,
                    kubernetes_config.new_client_from_config(str(self.kubeconfig)))  # type: ignore[no-untyped-call]


class KubeCluster(Cluster):
    """``kube-local.sh``'s loopback cluster: etcd, kube-apiserver, controller-manager, scheduler and kwok
    (pods become Ready without running)."""

    runs_pods = False

    def __init__(self, script: Path, kube_bin: Path, directory: Path) -> None:
        super().__init__(Path())
        self.script = script
        self.directory = directory
        self.environment = {**os.environ, "KUBE_LOCAL_BIN": str(kube_bin)}

    def start(self) -> None:
        started = subprocess.run([str(self.script), "start", str(self.directory)], env=self.environment,
                                 capture_output=True, text=True, check=False, timeout=300)
        if started.returncode != 0:
            raise RuntimeError(f"kube-local.sh start failed:\n{started.stderr[-3000:]}")
        self.kubeconfig = Path(started.stdout.strip().splitlines()[-1])

    def stop(self) -> None:
        subprocess.run([str(self.script), "stop", str(self.directory)], env=self.environment,
                       capture_output=True, check=False, timeout=120)


class ExistingCluster(Cluster):
    """A cluster the tests did not start and never stop (kind on GitHub's runner), whose pods really run."""

    runs_pods = True


EXISTING_CLUSTER_VARIABLE = "VAULT_PLATFORM_E2E_KUBECONFIG"
"""The admin kubeconfig of a cluster to use instead of starting ``kube-local.sh`` (the GitHub workflow's)."""


def existing_cluster(environment: Mapping[str, str]) -> ExistingCluster | None:
    """The cluster :data:`EXISTING_CLUSTER_VARIABLE` names, if it is set; a missing file is refused with
    a :class:`FileNotFoundError` that names the variable."""
    kubeconfig = environment.get(EXISTING_CLUSTER_VARIABLE)
    if not kubeconfig:
        return None
    if not Path(kubeconfig).is_file():
        raise FileNotFoundError(f"{EXISTING_CLUSTER_VARIABLE}={kubeconfig}: no such kubeconfig; set it to an "
                                "existing cluster's admin kubeconfig, or unset it to start kube-local.sh")
    return ExistingCluster(Path(kubeconfig))


class _InThread:
    """A socketserver server run in a daemon thread of the test process: started, then shut down."""

    server: socketserver.BaseServer

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HttpsFiles(_InThread):
    """An HTTPS server on a free loopback port answering GETs from a table of paths (a callable gets
    the request's headers), with a certificate for ``tls.host`` from a throwaway CA."""

    def __init__(self, tls: ServerTls, directory: Path,
                 files: Mapping[str, bytes | Callable[[Mapping[str, str]], tuple[int, bytes]]]) -> None:
        self.tls = tls
        self.files = dict(files)
        table = self.files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                entry = table.get(self.path.split("?")[0])
                status, body = (404, b"not found") if entry is None else (
                    (200, entry) if isinstance(entry, bytes) else entry(dict(self.headers.items())))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/json" if body[:1] in (b"{", b"[") else
                                 "application/octet-stream")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        (directory / "server.crt").write_text(tls.certificate_pem)
        (directory / "server.key").write_text(tls.key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(directory / "server.crt", directory / "server.key")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port: int = self.server.server_address[1]


class ConnectProxy(_InThread):
    """An HTTPS proxy (``CONNECT``) on a free loopback port that tunnels the named hosts to loopback
    ports and refuses every other host: given to a process as ``HTTPS_PROXY``, it makes a public name
    reach a local server without root or ``/etc/hosts`` (Go never proxies loopback addresses, so Vault
    and the Kubernetes API are still reached directly)."""

    def __init__(self, routes: Mapping[str, int]) -> None:
        table = dict(routes)

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                request = self.rfile.readline(4096).decode("latin-1").split()
                while self.rfile.readline(4096) not in (b"\r\n", b"\n", b""):
                    pass
                host = request[1].rsplit(":", 1)[0] if len(request) == 3 and request[0] == "CONNECT" else ""
                if host not in table:
                    self.wfile.write(b"HTTP/1.1 403 Forbidden\r\n\r\n")
                    return
                with socket.create_connection(("127.0.0.1", table[host]), timeout=10) as upstream:
                    self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    self.wfile.flush()
                    _pipe(self.connection, upstream)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def _pipe(left: socket.socket, right: socket.socket) -> None:
    sockets = [left, right]
    while True:
        readable, _, _ = select.select(sockets, [], [], 60)
        if not readable:
            return
        for source in readable:
            data = source.recv(65536)
            if not data:
                return
            (right if source is left else left).sendall(data)


def audit_log_entries(path: Path) -> list[dict[str, Any]]:
    """A Vault file audit device's log, one JSON entry a line."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@contextlib.contextmanager
def running(*servers: Any) -> Iterator[None]:
    """Starts the servers in order and always stops every one that started, in reverse order."""
    started: list[Any] = []
    try:
        for server in servers:
            started.append(server)  # stopped even when its start fails halfway
            server.start()
        yield
    finally:
        for server in reversed(started):
            with contextlib.suppress(Exception):
                server.stop()
