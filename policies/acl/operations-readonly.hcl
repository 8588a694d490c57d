# The operators' policy (people in the identity provider's operators group, through OIDC): see how
# Vault is doing and how it is configured, change nothing, read no secret value, issue no credential.

# Health, seal, leadership, Raft and metrics.
path "sys/health" {
  capabilities = ["read"]
}

path "sys/seal-status" {
  capabilities = ["read"]
}

path "sys/leader" {
  capabilities = ["read"]
}

path "sys/ha-status" {
  capabilities = ["read"]
}

path "sys/storage/raft/autopilot/state" {
  capabilities = ["read"]
}

path "sys/metrics" {
  capabilities = ["read"]
}

path "sys/internal/counters/activity" {
  capabilities = ["read"]
}

# Configuration: mounts, auth methods' roles, policies.
path "sys/mounts" {
  capabilities = ["read"]
}

path "sys/mounts/*" {
  capabilities = ["read"]
}

path "sys/auth" {
  capabilities = ["read"]
}

path "sys/policies/acl" {
  capabilities = ["list"]
}

path "sys/policies/acl/*" {
  capabilities = ["read"]
}

path "auth/kubernetes/role/*" {
  capabilities = ["read", "list"]
}

path "auth/github-actions/role/*" {
  capabilities = ["read", "list"]
}

path "identity/group/name/*" {
  capabilities = ["read", "list"]
}

# Engines' settings and roles, never their secrets or credentials.
path "database/roles/*" {
  capabilities = ["read", "list"]
}

path "database/static-roles/*" {
  capabilities = ["read", "list"]
}

path "transit/keys/*" {
  capabilities = ["read", "list"]
}

path "pki_int/roles/*" {
  capabilities = ["read", "list"]
}

path "pki_int/issuer/*" {
  capabilities = ["read"]
}
