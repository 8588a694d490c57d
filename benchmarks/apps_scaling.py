"""How the program scales with the number of applications a stack onboards.

Runs the prod stack with N generated applications (each with its own KV secret, database role and
policy) through spec validation and through the whole program under Pulumi's mock engine, and
prints seconds and peak Python memory per N. Linear growth shows as a flat "per app" column.

    venv/bin/python -m benchmarks.apps_scaling [N ...]
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from typing import Any

from components.environment import load_spec
from components.render.acl import load_policy_files
from platformctl.engine import declare
from tests.support import edited

P = "vault-platform:"


def prod_with_apps(count: int) -> tuple[dict[str, Any], frozenset[str]]:
    base = edited("prod")
    config = dict(base.config)
    secrets = {f"app-{i}": {"data": {"token": {"random": {"length": 32}}}} for i in range(count)}
    config[f"{P}kv"] = {**config[f"{P}kv"], "secrets": {**config[f"{P}kv"]["secrets"], **secrets}}
    database = dict(config[f"{P}database"])
    database["roles"] = [
        {"name": f"role-{i}", "connection": "postgres", "grants": [{"privileges": ["SELECT"], "schema": "public"}]}
        for i in range(count)
    ]
    config[f"{P}database"] = database
    config[f"{P}policies"] = [
        {"name": f"policy-{i}", "rules": [{"path": f"secret/data/production/app-{i}", "capabilities": ["read"]}]}
        for i in range(count)
    ]
    config[f"{P}apps"] = [
        {"name": f"app-{i}", "namespace": f"team-{i % 50}", "serviceAccount": f"app-{i}",
         "kvPaths": [f"production/app-{i}"], "databaseRole": f"role-{i}", "policies": [f"policy-{i}"]}
        for i in range(count)
    ]
    return config, base.secret_keys


def measure(count: int) -> tuple[float, float, float, int]:
    config, secret_keys = prod_with_apps(count)
    reserved = [d.name for d in load_policy_files()]
    started = time.perf_counter()
    load_spec("prod", config, secret_keys, reserved)
    validate = time.perf_counter() - started
    tracemalloc.start()
    started = time.perf_counter()
    declaration = declare("prod", config, secret_keys)
    program = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert declaration.error is None, declaration.error
    return validate, program, peak / 2**20, len(declaration.resources)


def main(counts: list[int]) -> None:
    print(f"{'apps':>6} {'resources':>9} {'spec s':>8} {'program s':>10} {'ms/app':>7} {'peak MiB':>9}")
    for count in counts:
        validate, program, peak, resources = measure(count)
        print(f"{count:6d} {resources:9d} {validate:8.3f} {program:10.2f} {1000 * program / count:7.1f} {peak:9.1f}")


if __name__ == "__main__":
    main([int(n) for n in sys.argv[1:]] or [50, 100, 200, 400])
