"""The ``cluster`` section of the stack config: the Helm release of Vault this stack deploys (replicas,
TLS, the injector, storage, resources, KMS auto-unseal, Raft autopilot).

Called by :func:`environment.loader.load_spec`; every refusal is a :class:`SpecError` that names the key.
"""

from __future__ import annotations

import re

from vaultmodel import rules
from vaultmodel.durations import DAY

from . import operations
from ._reader import AWS_REGION, HOST, K8S_LABEL, K8S_SUBDOMAIN, QUANTITY, Node, quantity
from .model import AutoUnseal, Cluster, RaftAutopilot, Resources, Tier, Tls


def load_cluster(node: Node, tier: Tier) -> Cluster:
    chart_version = node.string("chartVersion")
    if (problem := rules.exact_version(chart_version)) is not None:
        raise node.error("chartVersion", problem,
                         "pin an exact chart version such as 0.34.1 (no ranges, no 'latest')")
    replicas = node.integer("replicas", minimum=1, maximum=rules.MAX_RAFT_VOTERS, why=rules.MAX_RAFT_VOTERS_WHY)
    for problem in (rules.odd_replicas(replicas), rules.enough_replicas(replicas, tier)):
        if problem is not None:
            fixes = rules.replica_counts_near(replicas, tier)
            raise node.error("replicas", problem, f"use {' or '.join(map(str, fixes))}", edit=fixes[0])
    tls_node = node.child("tls")
    tls = Tls(
        enabled=tls_node.boolean("enabled", True),
        secret_name=tls_node.string("secretName", "vault-tls", rule=K8S_SUBDOMAIN),
        cert_manager_issuer=tls_node.optional_string("certManagerIssuer", rule=K8S_SUBDOMAIN),
        ca_secret_name=tls_node.string("caSecretName", "vault-ca", rule=K8S_SUBDOMAIN),
        extra_dns_names=tls_node.strings("extraDnsNames", rule=HOST),
    )
    tls_node.done()
    if (problem := rules.tls_allowed(tls.enabled, tier)) is not None:
        raise tls_node.error("enabled", problem, "remove the setting or set it to true", edit=True)
    injector = node.child("injector")
    injector_replicas = injector.integer("replicas", 1 if tier == "dev" else 2, minimum=1,
                                         maximum=MAX_INJECTOR_REPLICAS, why=MAX_INJECTOR_REPLICAS_WHY)
    injector_resources = _resources(injector.child("resources"), ("50m", "64Mi", "250m", "256Mi"))
    injector.done()
    if (problem := rules.injector_replicas(injector_replicas, tier)) is not None:
        raise injector.error("replicas", problem, "use 2 or more", edit=2)
    storage = node.child("storage")
    data_storage = _volume_size(storage, "data")
    audit_storage = _volume_size(storage, "audit")
    storage_class = storage.optional_string("storageClass", rule=K8S_SUBDOMAIN)
    storage.done()
    cluster = Cluster(
        namespace=node.string("namespace", "vault", rule=K8S_LABEL),
        release_name=node.string("releaseName", "vault", rule=K8S_LABEL),
        chart_version=chart_version,
        replicas=replicas,
        tls=tls,
        auto_unseal=_auto_unseal(node.child("autoUnseal")) if node.has("autoUnseal") else None,
        injector_replicas=injector_replicas,
        data_storage=data_storage,
        audit_storage=audit_storage,
        storage_class=storage_class,
        server_resources=_resources(node.child("resources"), ("250m", "256Mi", "1", "1Gi")),
        injector_resources=injector_resources,
        autopilot=load_autopilot(node.child("autopilot"), tier, replicas),
    )
    node.raw("autoUnseal")
    node.done()
    return cluster


# How long a server may be out of contact before autopilot takes its Raft vote (with 3 or more
# replicas). min_quorum is the replicas, so this only ever prunes servers beyond the StatefulSet's
# pods after a scale-down: short enough that a deploy's rollout sees them gone, longer in prod for
# a slow node replacement. Vault refuses less than a minute (vault/logical_raft.go).
DEAD_SERVER_THRESHOLD: dict[Tier, int] = {"dev": DAY, "staging": 5 * 60, "prod": 10 * 60}
MIN_DEAD_SERVER_THRESHOLD = 60


def load_autopilot(node: Node, tier: Tier, replicas: int) -> RaftAutopilot:
    threshold = node.duration("deadServerLastContactThreshold", DEAD_SERVER_THRESHOLD[tier])
    if threshold < MIN_DEAD_SERVER_THRESHOLD:
        written = node.written("deadServerLastContactThreshold", threshold)
        raise node.error("deadServerLastContactThreshold", f"{written} is below the 1m "
                         "Vault accepts", "use 1m or more, e.g. 10m", edit="10m")
    node.done()
    return RaftAutopilot(cleanup_dead_servers=replicas >= 3, dead_server_last_contact_threshold=threshold,
                         min_quorum=replicas)


# The injector is a webhook Deployment that mostly waits: two or three replicas carry any cluster,
# and a count in the dozens is a typo, not a plan.
MAX_INJECTOR_REPLICAS = 10
MAX_INJECTOR_REPLICAS_WHY = "the injector webhook is light; more replicas only add pods"
GI = 2.0**30
MI = 2.0**20
# A Raft volume below 1Gi fills with the first snapshots; EBS, the volume type of the EKS stacks,
# tops out at 16TiB per volume (gp3, io2), so a larger claim never binds.
VOLUME_SIZE = (1 * GI, 16 * 2.0**40, "1Gi", "16Ti")
# Neither Vault nor the injector starts in less memory; a bare number is bytes to Kubernetes, so
# `memory: 256` would ask for 256 bytes.
MIN_MEMORY = (64 * MI, "64Mi")


def _volume_size(node: Node, key: str) -> str:
    """A volume claim's size: a Kubernetes quantity between 1Gi and 16Ti (``50`` is 50 bytes)."""
    size = node.string(key, "10Gi", rule=QUANTITY)
    low, high, low_text, high_text = VOLUME_SIZE
    if not low <= quantity(size) <= high:
        raise node.error(key, f"{size} is outside the {low_text} to {high_text} a volume can have",
                         f"use a size from {low_text} to {high_text}, e.g. 10Gi",
                         edit=low_text if quantity(size) < low else high_text)
    return size


def _resources(node: Node, defaults: tuple[str, str, str, str]) -> Resources:
    requests, limits = node.child("requests"), node.child("limits")
    resources = Resources(
        cpu_request=requests.string("cpu", defaults[0], rule=QUANTITY),
        memory_request=requests.string("memory", defaults[1], rule=QUANTITY),
        cpu_limit=limits.string("cpu", defaults[2], rule=QUANTITY),
        memory_limit=limits.string("memory", defaults[3], rule=QUANTITY),
    )
    for where, cpu, memory in ((requests, resources.cpu_request, resources.memory_request),
                               (limits, resources.cpu_limit, resources.memory_limit)):
        if quantity(cpu) < 0.001:
            raise where.error("cpu", f"{cpu} is less than the 1m (a thousandth of a CPU) Kubernetes counts",
                              "use at least 1m, e.g. 50m", edit="50m")
        if quantity(memory) < MIN_MEMORY[0]:
            raise where.error("memory", f"{memory} is below the {MIN_MEMORY[1]} a container here needs to start",
                              f"use at least {MIN_MEMORY[1]}, with its unit (Mi, Gi)", edit=MIN_MEMORY[1])
    for key, request, limit in (("cpu", resources.cpu_request, resources.cpu_limit),
                                ("memory", resources.memory_request, resources.memory_limit)):
        if quantity(request) > quantity(limit):
            raise requests.error(key, f"the request {request} is above the limit {limit}",
                                 f"request at most {limit}, or raise limits.{key}", edit=limit)
    requests.done()
    limits.done()
    node.done()
    return resources


def _auto_unseal(node: Node) -> AutoUnseal:
    node.string("type", "awskms", choices=("awskms",))
    unseal = AutoUnseal(
        region=node.string("region", rule=AWS_REGION),
        kms_key_id=node.string("kmsKeyId"),
        role_arn=node.string("roleArn"),
    )
    if not operations.ROLE_ARN.fullmatch(unseal.role_arn):
        raise node.error("roleArn", f"{unseal.role_arn!r} is not an IAM role ARN",
                         "use arn:aws:iam::<account>:role/<name>")
    if not re.fullmatch(r"(alias/[\w/-]+|(mrk-)?[0-9a-f-]{32,36}|arn:aws[-a-z]*:kms:[\w-]+:\d{12}:(key|alias)/[\w/-]+)",
                        unseal.kms_key_id):
        raise node.error("kmsKeyId", f"{unseal.kms_key_id!r} is not a KMS key id, ARN or alias",
                         "use the key id, its ARN, or alias/<name>")
    node.done()
    return unseal
