"""The guardrails policy pack (Pulumi CrossGuard): its policies are in :mod:`.checks`."""
