"""The offline model of Vault, with no Pulumi in it: Vault's ACL semantics (:mod:`.vault_acl`), its
durations (:mod:`.durations`), who reaches what through the declared resources (:mod:`.access`), the
rules the spec and the guardrails pack both enforce (:mod:`.rules`) and the IaC token's call catalogue
(:mod:`.iac_calls`).

It sits below everything else: the environment spec (``environment``), the renderers and
components, ``platformctl``, the guardrails pack (``policies.guardrails``), the benchmarks and the tests
may import it; it imports none of them (``tests/test_import_graph.py`` refuses any such import)."""
