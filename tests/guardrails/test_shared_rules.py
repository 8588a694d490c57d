"""vaultmodel/rules.py: the rules the spec and the policy pack share, and proof that both use them."""

from __future__ import annotations

import pytest

from environment import SpecError
from tests.support import API_SERVICE, spec_of
from vaultmodel import rules

from .harness import reported, resource_args

HOUR = 3600


class TestRules:
    @pytest.mark.parametrize(("problem", "expected"), [
        (rules.exact_version("0.34.1"), None),
        (rules.exact_version("^0.34"), "'^0.34' is not an exact version"),
        (rules.exact_version("latest"), "'latest' is not an exact version"),
        (rules.odd_replicas(5), None),
        (rules.odd_replicas(2), "2 replicas is even; Raft needs an odd number to keep a majority through a failure"),
        (rules.enough_replicas(1, "dev"), None),
        (rules.enough_replicas(3, "prod"), None),
        (rules.enough_replicas(1, "staging"), "1 replica(s) cannot survive a node failure in staging"),
        (rules.tls_allowed(False, "dev"), None),
        (rules.tls_allowed(True, "prod"), None),
        (rules.tls_allowed(False, "prod"), "TLS may only be turned off in dev, not in prod"),
        (rules.injector_replicas(1, "dev"), None),
        (rules.injector_replicas(2, "prod"), None),
        (rules.injector_replicas(1, "prod"), "one injector replica is a single point of failure in prod: no pod with "
                                             "injected secrets can start while it is down"),
        (rules.injector_replicas(0, "staging"), "0 injector replicas are a single point of failure in staging: no pod "
                                                "with injected secrets can start while it is down"),
        (rules.cas_required(False, "staging"), None),
        (rules.cas_required(True, "prod"), None),
        (rules.cas_required(False, "prod"), "prod writes must use check-and-set, so that two writers cannot "
                                            "silently overwrite each other"),
        (rules.wildcard_binding("namespace", "production"), None),
        (rules.wildcard_binding("namespace", "*"), "binds every namespace ('*'), which lets any workload in the "
                                                   "cluster log in as this application"),
        (rules.wildcard_binding("service account", "api-*"), "binds every service account ('*'), which lets any "
                                                             "workload in the cluster log in as this application"),
        (rules.ttl_order("defaultTtl", HOUR, "maxTtl", HOUR), None),
        (rules.ttl_order("defaultTtl", 2 * HOUR, "maxTtl", HOUR), "2h is above maxTtl (1h)"),
        (rules.ttl_cap("maxTtl", 24 * HOUR, 24 * HOUR), None),
        (rules.ttl_cap("maxTtl", 48 * HOUR, 24 * HOUR), "maxTtl 2d is above the cap of 1d"),
    ])
    def test_rule(self, problem: str | None, expected: str | None) -> None:
        assert problem == expected


class TestOneImplementation:
    """The spec's refusal and the pack's report carry the same rule's words."""

    @pytest.mark.parametrize(("changes", "problem"), [
        ({"vault-platform:cluster.replicas": 4}, rules.odd_replicas(4)),
        ({"vault-platform:cluster.replicas": 1}, rules.enough_replicas(1, "prod")),
        ({"vault-platform:cluster.tls.enabled": False}, rules.tls_allowed(False, "prod")),
        ({"vault-platform:cluster.injector.replicas": 1}, rules.injector_replicas(1, "prod")),
        ({"vault-platform:cluster.chartVersion": "0.34"}, rules.exact_version("0.34")),
        ({"vault-platform:kv.casRequired": False}, rules.cas_required(False, "prod")),
        ({f"{API_SERVICE}environments.prod.namespace": "*"}, rules.wildcard_binding("namespace", "*")),
        ({f"{API_SERVICE}tokenTtl": "8h"}, rules.ttl_order("tokenTtl", 8 * HOUR, "tokenMaxTtl", 4 * HOUR)),
        ({"vault-platform:database.roles[0].defaultTtl": "2d"},
         rules.ttl_order("defaultTtl", 48 * HOUR, "maxTtl", 4 * HOUR, shown=("2d", "4h"))),
    ])
    def test_spec_refuses_with_the_rule(self, changes: dict[str, object], problem: str) -> None:
        with pytest.raises(SpecError) as refused:
            spec_of("prod", changes)
        assert refused.value.problem == problem

    def test_pack_reports_with_the_rule(self) -> None:
        args = resource_args("kubernetes:helm.sh/v3:Release",
                             {"values": {"server": {"ha": {"enabled": True, "replicas": 4.0,
                                                           "raft": {"enabled": True}}}}})
        assert reported("vault-ha-raft", args) == [f"server.ha.replicas: {rules.odd_replicas(4)}; use 3 or 5"]
