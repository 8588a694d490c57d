"""``platformctl preflight``'s second check: Vault reaches the issuers of its JWT/OIDC logins, fetched
from inside a server pod (writing ``auth/<path>/config`` makes Vault fetch the discovery document:
hashicorp/vault-plugin-auth-jwt path_config.go)."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from platformctl.__main__ import main
from platformctl.adapters import reach_io
from platformctl.adapters.rollout_io import ConfigException
from platformctl.core import reach
from platformctl.core.findings import Finding
from platformctl.core.reach import Issuer, check_reach, fetch_command, issuers
from tests.support import DELETE, spec_of

GITHUB = "https://token.actions.githubusercontent.com/.well-known/openid-configuration"
PEOPLE = "https://login.vault-platform.example/.well-known/openid-configuration"


def fake_exec(failing: dict[str, tuple[int, str]]) -> tuple[reach.Exec, list[tuple[str, list[str]]]]:
    """An exec that fails for the URLs in ``failing`` (exit code, stderr), and the calls it saw."""
    calls: list[tuple[str, list[str]]] = []

    def run(pod: str, command: Sequence[str]) -> tuple[int, str]:
        calls.append((pod, list(command)))
        return failing.get(command[-1], (0, ""))

    return run, calls


class TestIssuers:
    def test_the_ci_and_people_logins_issuers(self) -> None:
        assert issuers(spec_of("prod")) == (Issuer("auth/github-actions (CI)", GITHUB),
                                            Issuer("auth/oidc (people)", PEOPLE))

    def test_an_issuer_with_a_path_keeps_it(self) -> None:
        spec = spec_of("prod", {"vault-platform:oidc.discoveryUrl": "https://acme.okta.com/oauth2/default/"})
        assert issuers(spec)[1].discovery_url == "https://acme.okta.com/oauth2/default/.well-known/openid-configuration"

    def test_no_login_no_issuer(self) -> None:
        assert issuers(spec_of("prod", {"vault-platform:githubActions": DELETE, "vault-platform:oidc": DELETE,
                                        "vault-platform:oidcClientSecret": DELETE})) == ()


class TestCheck:
    def test_every_issuer_fetched_from_the_first_running_server(self) -> None:
        run, calls = fake_exec({})
        assert check_reach(spec_of("prod"), ["vault-0", "vault-1"], run) == ((), (
            f"prod: Vault (vault-0) reaches {GITHUB} (auth/github-actions (CI))",
            f"prod: Vault (vault-0) reaches {PEOPLE} (auth/oidc (people))"))
        assert calls == [("vault-0", ["wget", "-q", "-T", "10", "-O", "/dev/null", GITHUB]),
                         ("vault-0", ["wget", "-q", "-T", "10", "-O", "/dev/null", PEOPLE])]

    def test_an_issuer_out_of_reach_is_an_error(self) -> None:
        run, _ = fake_exec({GITHUB: (1, "wget: bad address 'token.actions.githubusercontent.com'\n")})
        problems, reached = check_reach(spec_of("prod"), ["vault-2"], run)
        assert problems == (Finding(
            "error", f"prod: Vault (vault-2) cannot fetch {GITHUB} (auth/github-actions (CI)): wget: bad address "
            "'token.actions.githubusercontent.com'; `pulumi up` would fail writing auth/github-actions/config, and "
            "logins would fail",
            "let namespace vault reach token.actions.githubusercontent.com on 443 (egress rules, proxy, firewall, "
            "DNS)"),)
        assert reached == (f"prod: Vault (vault-2) reaches {PEOPLE} (auth/oidc (people))",)

    def test_a_silent_failure_says_the_exit_code(self) -> None:
        run, _ = fake_exec({PEOPLE: (-1, "")})
        (problem,), _ = check_reach(spec_of("prod"), ["vault-0"], run)
        assert f"cannot fetch {PEOPLE} (auth/oidc (people)): wget exited -1;" in problem.message

    def test_no_server_running_yet_is_a_warning(self) -> None:
        run, calls = fake_exec({})
        assert check_reach(spec_of("prod"), [], run) == ((Finding(
            "warning", f"prod: no Vault server pod runs in namespace vault: whether Vault reaches {GITHUB}, {PEOPLE} "
            "is not checked", "run the preflight again once the servers run"),), ())
        assert calls == []


@pytest.fixture
def discovery_server() -> Iterator[str]:
    """A local HTTP server with a discovery document at one path, 404 elsewhere."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path == "/.well-known/openid-configuration"
            self.send_response(200 if found else 404)
            self.end_headers()
            self.wfile.write(b'{"issuer": "http://127.0.0.1"}' if found else b"")

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.skipif(shutil.which("wget") is None, reason="no wget on this machine")
@pytest.mark.parametrize(("path", "reached"), [("", True), ("/realms/missing", False)])
def test_the_fetch_fails_unless_the_document_is_served(discovery_server: str, path: str, reached: bool) -> None:
    # This machine's wget takes the flags the servers' busybox wget takes (-q, -T, -O).
    url = reach.discovery(discovery_server + path)
    result = subprocess.run(fetch_command(url), capture_output=True, text=True, timeout=30, check=False)
    assert (result.returncode == 0) is reached


class TestCommand:
    def test_without_cluster_access_it_warns_and_passes(self, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
        def no_kubeconfig() -> None:
            raise ConfigException("Invalid kube-config file. No configuration found.")

        monkeypatch.setattr("platformctl.commands.preflight_command.kubernetes_api", no_kubeconfig)
        assert main(["preflight", "dev"]) == 0
        out, err = capsys.readouterr()
        assert out == "dev: no auto-unseal (Shamir unseal keys); nothing to check\n"
        assert err == (
            "warning: dev: whether Vault reaches its logins' issuers is not checked: no access to the cluster's "
            "server pods (Invalid kube-config file. No configuration found.)\n"
            "  fix: run the preflight with a kubeconfig for the stack's cluster that may list and exec into pods "
            "in namespace vault\n")

    @pytest.mark.parametrize(("failing", "status"), [({}, 0), ({GITHUB: (1, "wget: download timed out")}, 1)])
    def test_an_issuer_out_of_reach_fails_the_preflight(self, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str],
                                                        failing: dict[str, tuple[int, str]], status: int) -> None:
        run, _ = fake_exec(failing)
        monkeypatch.setattr("platformctl.commands.preflight_command.kubernetes_api", lambda: object())
        monkeypatch.setattr("platformctl.commands.preflight_command.server_pods", lambda api, spec: ["vault-0"])
        monkeypatch.setattr("platformctl.commands.preflight_command.pod_exec", lambda api, namespace: run)
        assert main(["preflight", "dev"]) == status
        out, err = capsys.readouterr()
        assert (f"dev: Vault (vault-0) reaches {GITHUB}" in out) is (status == 0)
        assert ("error: dev: Vault (vault-0) cannot fetch " + GITHUB in err) is (status == 1)


def test_the_exec_runs_the_command_in_the_vault_container(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    class Response:
        returncode = 0

        def run_forever(self, timeout: float) -> None:
            seen["timeout"] = timeout

        def read_stderr(self) -> str:
            return ""

        def close(self) -> None:
            seen["closed"] = True

    def fake_stream(function: Any, pod: str, namespace: str, **kwargs: Any) -> Response:
        seen.update(pod=pod, namespace=namespace, **kwargs)
        return Response()

    monkeypatch.setattr("platformctl.adapters.reach_io.stream", fake_stream)
    run = reach_io.pod_exec(None, "vault")  # type: ignore[arg-type]
    assert run("vault-1", ["true"]) == (0, "")
    assert seen == {"pod": "vault-1", "namespace": "vault", "container": "vault", "command": ["true"], "stderr": True,
                    "stdin": False, "stdout": True, "tty": False, "_preload_content": False, "timeout": 20,
                    "closed": True}
