"""End-to-end tests: the program applied by the real Pulumi CLI and providers to real servers that the
tests start on loopback (Vault with Raft storage, PostgreSQL 15, a Kubernetes API, the chart's
repository, an OIDC issuer) and always stop."""
