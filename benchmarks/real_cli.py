"""The program at scale under the real Pulumi CLI and providers, against a real Vault (Raft) this script
starts on loopback and stops: N generated applications, each in its own file (its KV secret with a
generated value, its auth role and its policy: four resources an app), on a prod-shaped stack whose
Vault is external (``tests/e2e/stacks/Pulumi.e2e-prod.yaml`` without the database, snapshots and
logins, which need servers of their own; the token login).

For each N it measures, in a fresh copy of the project and a fresh Vault, the wall time of:

- ``up``: ``pulumi up`` from empty;
- ``preview``: a no-op ``pulumi preview`` right after;
- ``one app``: ``pulumi up`` after one application's file changes (its token TTL);

once with the CLI's checkpoints (the whole state written after every step, as the deploys run) and
once with ``PULUMI_SKIP_CHECKPOINTS=true``, and the size of the ``PULUMI_CONFIG`` the CLI hands the
program (which Linux caps at 128 KiB for one environment string). It needs the real tools
(``../shared/tools/install.sh``) and root (as the end-to-end tests, for nothing here but their harness).

    venv/bin/python -m benchmarks.real_cli [--no-checkpoints-only] N [N ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.project import PulumiProject
from tests.e2e.servers import VaultServer, running
from tests.e2e.tools import find_tools
from tests.postgres.server import ServerTls

STACK = "e2e-prod"
E2E = Path(__file__).resolve().parents[1] / "tests" / "e2e"
P = "vault-platform:"


def bench_stack(cluster_ca: str, audit_log: Path) -> dict[str, Any]:
    """The e2e stack without what needs servers of its own (database, snapshots, CI's and people's logins)."""
    document: dict[str, Any] = yaml.safe_load((E2E / "stacks" / f"Pulumi.{STACK}.yaml").read_text())
    config = document["config"]
    for key in ("database", "snapshots", "githubActions", "oidc"):
        config.pop(f"{P}{key}")
    # Writing the auth method's config contacts nothing: a host and CA that look like a cluster's do.
    config[f"{P}externalVault"].update(kubernetesHost="https://api.bench.example:6443", kubernetesCaCert=cluster_ca)
    config[f"{P}audit"]["devices"][0]["filePath"] = str(audit_log)
    config[f"{P}kv"]["secrets"] = {}
    return document


def write_apps(root: Path, count: int, ttl: str = "1h", *, per_team: int | None = None) -> None:
    """Applications ``0`` to ``count - 1``, each with its generated secret (four resources an app): in 50
    teams round robin, or ``per_team`` to a team in order (``i // per_team``)."""
    for i in range(count):
        team = i % 50 if per_team is None else i // per_team
        path = root / "apps" / f"team-{team}" / f"app-{i}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({
            "namespace": f"team-{team}", "serviceAccount": f"app-{i}", "tokenTtl": ttl,
            "kvPaths": [f"production/app-{i}"],
            "secrets": {f"app-{i}": {"data": {"token": {"random": {"length": 32}}}}},
            "environments": {STACK: None}}))


def timed(project: PulumiProject, *arguments: str, environment: dict[str, str]) -> float:
    started = time.monotonic()
    project.run(*arguments, "--stack", STACK, "--non-interactive", environment=environment, timeout=3600)
    return round(time.monotonic() - started, 1)


def measure(count: int, checkpoints: bool, directory: Path) -> dict[str, Any]:
    tools, missing = find_tools()
    if tools is None:
        raise SystemExit(f"the real tools are missing: {', '.join(missing)}")
    vault = VaultServer(tools.which("vault"), directory / "vault")
    environment = {} if checkpoints else {"PULUMI_SKIP_CHECKPOINTS": "true"}
    with running(vault):
        project = PulumiProject(tools, directory / "cli")
        shutil.rmtree(project.root / "apps")  # the committed apps run in other stacks
        (project.root / "stacks" / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(bench_stack(
            ServerTls.throwaway("bench", "bench CA").ca_pem, directory / "vault-audit.log"), sort_keys=False))
        write_apps(project.root, count)
        project.init(STACK, {"vault:address": vault.address}, {"vault:token": vault.root_token,
                                                                "vault-platform:tokenReviewerJwt": "bench-jwt"})
        config_size = len(project.run("config", "--stack", STACK, "--json", "--show-secrets").stdout)
        up = timed(project, "up", "--yes", "--skip-preview", environment=environment)
        resources = len(json.loads(project.run("stack", "export", "--stack", STACK).stdout)["deployment"]["resources"])
        preview = timed(project, "preview", environment=environment)
        write_apps(project.root, 1, ttl="30m")  # app-0 changes, every other file stays
        one_app = timed(project, "up", "--yes", "--skip-preview", environment=environment)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    return {"apps": count, "checkpoints": checkpoints, "resources": resources, "up s": up, "preview s": preview,
            "one app s": one_app, "config JSON bytes": config_size, "largest process MiB": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("counts", nargs="+", type=int)
    parser.add_argument("--no-checkpoints-only", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root, as the end-to-end tests")
    for count in args.counts:
        for checkpoints in ((False,) if args.no_checkpoints_only else (True, False)):
            with tempfile.TemporaryDirectory(prefix="bench-") as directory:
                print(json.dumps(measure(count, checkpoints, Path(directory))), flush=True)


if __name__ == "__main__":
    main()
