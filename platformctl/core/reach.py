"""Whether Vault reaches the identity providers its JWT/OIDC logins trust, checked from inside the
cluster before ``pulumi up``.

Writing a JWT/OIDC auth method's config (``auth/<path>/config`` with ``oidc_discovery_url``) makes
Vault fetch the issuer's discovery document there and then, and refuse the write when it cannot
("error checking oidc discovery URL": hashicorp/vault-plugin-auth-jwt, path_config.go); logins fetch
the signing keys the same way later. So the servers need a route out to GitHub's issuer (CI's login)
and to the company's identity provider (people's). The check fetches each discovery document from
a running Vault server pod, with the busybox ``wget`` of the chart's own image (Alpine), through the
Kubernetes API's exec (:mod:`platformctl.adapters.reach_io`): the servers' network path, not the runner's.
Pure decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from environment import EnvironmentSpec

from .findings import Finding

FETCH_TIMEOUT = 10
"""Seconds one fetch may take."""

Exec = Callable[[str, Sequence[str]], tuple[int, str]]
"""Runs a command in a server pod: (pod, command) -> (exit code, what it wrote to stderr)."""


@dataclass(frozen=True)
class Issuer:
    """An issuer Vault must reach."""

    login: str
    """Which login trusts it, e.g. ``auth/github-actions (CI)``."""
    discovery_url: str
    """Its discovery document, as Vault fetches it (the issuer, then ``/.well-known/openid-configuration``)."""


def issuers(spec: EnvironmentSpec) -> tuple[Issuer, ...]:
    """The issuers of the stack's logins: GitHub's for CI, the identity provider's for people."""
    found = []
    if spec.github_actions is not None:
        found.append(Issuer(f"auth/{spec.github_actions.path} (CI)", discovery(spec.github_actions.issuer)))
    if spec.people is not None:
        found.append(Issuer(f"auth/{spec.people.path} (people)", discovery(spec.people.discovery_url)))
    return tuple(found)


def discovery(issuer: str) -> str:
    """The discovery document of ``issuer`` (OpenID Connect Discovery 1.0, section 4)."""
    return f"{issuer.rstrip('/')}/.well-known/openid-configuration"


def fetch_command(url: str) -> list[str]:
    """Fetches ``url`` and discards it; busybox ``wget`` exits non-zero on any failure."""
    return ["wget", "-q", "-T", str(FETCH_TIMEOUT), "-O", "/dev/null", url]


def check_reach(spec: EnvironmentSpec, pods: Sequence[str], run: Exec) -> tuple[tuple[Finding, ...], tuple[str, ...]]:
    """(problems, what was reached) for ``spec``'s issuers, fetched from the first of ``pods`` (the
    running server pods)."""
    wanted = issuers(spec)
    if not wanted:
        return (), ()
    if not pods:
        return (Finding("warning", f"{spec.stack}: no Vault server pod runs in namespace {spec.deployed.namespace}: "
                        f"whether Vault reaches {', '.join(issuer.discovery_url for issuer in wanted)} is not "
                        "checked", "run the preflight again once the servers run"),), ()
    pod = pods[0]
    problems, reached = [], []
    for issuer in wanted:
        code, errors = run(pod, fetch_command(issuer.discovery_url))
        if code == 0:
            reached.append(f"{spec.stack}: Vault ({pod}) reaches {issuer.discovery_url} ({issuer.login})")
            continue
        host = urlsplit(issuer.discovery_url).hostname
        problems.append(Finding(
            "error", f"{spec.stack}: Vault ({pod}) cannot fetch {issuer.discovery_url} ({issuer.login}): "
            f"{errors.strip() or f'wget exited {code}'}; `pulumi up` would fail writing {issuer.login.split()[0]}"
            "/config, and logins would fail",
            f"let namespace {spec.deployed.namespace} reach {host} on 443 (egress rules, proxy, firewall, DNS)"))
    return tuple(problems), tuple(reached)
