"""Hand-written Vault ACL policies (``acl/``) and the guardrails policy pack (``guardrails/``)."""
