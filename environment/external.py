"""The ``externalVault`` section of the stack config: a Vault this stack configures but does not deploy
(HCP Vault Dedicated, a Vault on VMs, another team's cluster).

Called by :func:`environment.loader.load_spec`, which refuses a stack that sets both
``cluster`` and ``externalVault``, or neither; with an external Vault it also reads here what the other
sections may declare (no in-cluster PostgreSQL, snapshots only of Raft storage, no alert rules). Every
refusal is one :class:`SpecError` naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from vaultmodel import rules

from . import operations
from ._reader import K8S_LABEL, K8S_SUBDOMAIN, PORTS, REMOVE, Node, attempt, ca_pem, port_problem, report
from .cluster import load_autopilot
from .model import Database, ExternalVault, RaftAutopilot, Snapshots, Tier

DEFAULT_JOBS_NAMESPACE = "vault-jobs"
# The API server's URL as a client outside the cluster dials it (a kubeconfig's `server`): https, a
# DNS name (EKS writes its endpoints in capitals) or an IP address, an optional port and path (a proxy
# such as Rancher's serves a cluster's API below one).
_KUBERNETES_HOST = re.compile(r"(?P<scheme>[a-z]+)://(?P<host>[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?|\[[0-9a-fA-F:.]+\])"
                              r"(:(?P<port>\d{1,5}))?(/[-\w./]*)?")
# The names a pod resolves for its own cluster's API server: a Vault outside the cluster cannot.
_IN_CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local")
_IN_CLUSTER_NAMES = ("kubernetes", "kubernetes.default")
SERVER_URL_COMMAND = "kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}'"
CA_COMMAND = ("kubectl config view --raw --minify -o "
              "jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d")
REVIEWER_FIX = ("create a service account in the application cluster bound to the ClusterRole "
                "system:auth-delegator, store a token of it with `pulumi config set --secret vault-platform:<key>`, "
                "and write {fromSecret: <key>} here (README, 'A Vault this stack does not deploy')")

KEYS = ("kubernetesHost", "kubernetesCaCert", "tokenReviewerJwt", "raft", "autopilot", "jobsNamespace",
        "caSecretName")
SecretReference = Callable[[Node, str], str]
"""Reads ``{fromSecret: <key>}`` at a key of a node and returns the stack secret's key."""


def load_external_vault(node: Node, tier: Tier, reference: SecretReference) -> ExternalVault:
    """The ``externalVault`` section: how Vault reaches the application cluster's API to review service
    account tokens, whether it runs on Raft (autopilot then needs the voters, which only the stack
    knows), and where the platform's jobs run."""
    # Every key of the section counts as read before any is checked: a missing one is then never taken
    # for a misspelling of another (kubernetesHost and kubernetesCaCert are spelled alike); a misspelt
    # one, unknown, still is.
    for key in KEYS:
        node.raw(key)
    host = _kubernetes_host(node)
    node.require("kubernetesCaCert", "paste the CA of the application cluster's API server as a YAML block "
                 f"(kubernetesCaCert: |), e.g. from `{CA_COMMAND}`")
    # A misspelt key is read (and reported) by node.string in its place, the load then stops.
    ca_cert = ca_pem(node, "kubernetesCaCert", "the application cluster's API server certificate") or (
        node.string("kubernetesCaCert"))
    node.require("tokenReviewerJwt", REVIEWER_FIX)
    reviewer = reference(node, "tokenReviewerJwt")
    raft = node.boolean("raft", False)
    autopilot = None
    if raft:
        autopilot = _autopilot(node.child("autopilot"), tier)
    elif node.has("autopilot"):
        raise node.error("autopilot", "is set, but raft is false: autopilot manages integrated (Raft) storage "
                         "only", "set raft: true if the Vault runs on integrated storage, or remove autopilot")
    node.raw("autopilot")
    external = ExternalVault(
        kubernetes_host=host,
        kubernetes_ca_cert=ca_cert,
        token_reviewer_jwt_key=reviewer,
        raft=raft,
        autopilot=autopilot,
        jobs_namespace=node.string("jobsNamespace", DEFAULT_JOBS_NAMESPACE, rule=K8S_LABEL),
        ca_secret_name=node.optional_string("caSecretName", rule=K8S_SUBDOMAIN),
    )
    node.done()
    return external


def _kubernetes_host(node: Node) -> str:
    node.require("kubernetesHost", "set it to the URL Vault reaches the application cluster's API server at, "
                 f"e.g. from `{SERVER_URL_COMMAND}`")
    host = node.string("kubernetesHost")
    match = _KUBERNETES_HOST.fullmatch(host)
    if match is None:
        raise node.error("kubernetesHost", f"{host!r} is not a URL of an API server",
                         "write it like https://api.cluster.example.com:6443, as the cluster's kubeconfig has it "
                         f"(`{SERVER_URL_COMMAND}`)")
    if match["scheme"] != "https":
        raise node.error("kubernetesHost", f"{host!r} is not https: Vault would send the token reviewer's JWT and "
                         "every service account token it reviews in clear", "use the API server's https:// URL")
    if match["port"] is not None and (problem := port_problem(int(match["port"]))) is not None:
        raise node.error("kubernetesHost", f"{host!r}: {problem}", f"use a port from {PORTS[0]} to {PORTS[1]}")
    name = match["host"].lower()
    if name in _IN_CLUSTER_NAMES or name.endswith(_IN_CLUSTER_SUFFIXES):
        raise node.error("kubernetesHost", f"{host!r} names the API server as pods inside the cluster reach it: "
                         "the Vault runs outside the cluster and cannot resolve it",
                         f"use the address the Vault reaches the API server at, e.g. from `{SERVER_URL_COMMAND}`")
    return host


def _autopilot(node: Node, tier: Tier) -> RaftAutopilot:
    """Autopilot of a Raft Vault this stack does not deploy: its minimum quorum is the Vault's voters,
    written down, since no replica count here says it."""
    node.require("minQuorum", "set it to the external Vault's Raft voters (`vault operator raft list-peers`), "
                 "e.g. 3 or 5")
    voters = node.integer("minQuorum", minimum=1, maximum=rules.MAX_RAFT_VOTERS, why=rules.MAX_RAFT_VOTERS_WHY)
    return load_autopilot(node, tier, voters)


def refuse_in_cluster_database(root: Node, database: Database | None) -> None:
    """With an external Vault, no in-cluster PostgreSQL: there is no Vault namespace to run it beside."""
    for connection in database.connections if database else ():
        if connection.in_cluster:
            report(root.error(f"database.connections[{connection.name}].inCluster", "the in-cluster PostgreSQL "
                              "runs beside a Vault this stack deploys, and this stack's Vault is external",
                              "point host, port and adminPassword at a PostgreSQL server the Vault reaches"))


def load_external_operations(root: Node, tier: Tier, vault: ExternalVault | None) -> Snapshots | None:
    """The snapshots and monitoring sections with an external Vault: snapshots only when declared, and
    only of Raft storage; no alert rules (they watch the chart's servers and volumes, which this stack
    does not run)."""
    if root.has("monitoring"):
        report(root.error("monitoring", "is set, but the stack's Vault is external: the alert rules watch the "
                          "servers, Raft and volumes of the Vault this program deploys, through the chart's "
                          "ServiceMonitor", "remove it: the Vault's operator scrapes and alerts on it", edit=REMOVE))
    root.raw("monitoring")
    if not root.has("snapshots"):
        root.raw("snapshots")
        return None
    if vault is not None and not vault.raft:
        report(root.error("snapshots", "is set, but vault-platform:externalVault.raft is false: Raft snapshots "
                          "need integrated storage", "remove snapshots (the Vault's operator backs it up), or set "
                          "externalVault.raft to true if the Vault runs on integrated storage"))
        root.raw("snapshots")
        return None
    return attempt(lambda: operations.load_snapshots(root.child("snapshots"), tier))
