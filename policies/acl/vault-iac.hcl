# The policy the IaC (pulumi up) runs with once the root token is revoked: it manages mounts, auth
# methods, policies, roles and audit devices, and writes static secrets. It never reads dynamic
# database credentials, encrypts or decrypts with transit keys, or issues certificates: those are the
# applications' own. Note that a holder who writes policies and auth roles can grant itself anything:
# this token is admin-equivalent, so it lives only in the stacks' encrypted config and in CI.

# Mounts, auth methods and audit devices.
path "sys/mounts" {
  capabilities = ["read"]
}

path "sys/mounts/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

path "sys/auth" {
  capabilities = ["read"]
}

path "sys/auth/*" {
  capabilities = ["create", "read", "update", "delete", "sudo"]
}

path "sys/audit" {
  capabilities = ["read", "sudo"]
}

path "sys/audit/*" {
  capabilities = ["create", "read", "update", "delete", "sudo"]
}

path "sys/policies/acl/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# The Kubernetes auth method's config and roles.
path "auth/kubernetes/config" {
  capabilities = ["create", "read", "update"]
}

path "auth/kubernetes/role/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# KV v2: the mount's config and the static secrets this program writes.
path "secret/config" {
  capabilities = ["create", "read", "update"]
}

path "secret/data/*" {
  capabilities = ["create", "update", "read"]
}

path "secret/metadata/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# Database secrets engine: connections, roles and root rotation, never credentials.
path "database/config/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

path "database/roles/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

path "database/static-roles/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

path "database/rotate-root/*" {
  capabilities = ["update"]
}

# Transit keys' settings, never encrypt or decrypt.
path "transit/keys/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# PKI: the root and intermediate CAs' set-up, URLs, CRL settings and roles; never issue/*.
path "pki/root/generate/internal" {
  capabilities = ["update"]
}

path "pki/root/sign-intermediate" {
  capabilities = ["update"]
}

path "pki/root" {
  capabilities = ["delete"]
}

path "pki_int/intermediate/generate/internal" {
  capabilities = ["update"]
}

path "pki_int/intermediate/set-signed" {
  capabilities = ["update"]
}

path "pki/config/*" {
  capabilities = ["create", "read", "update"]
}

path "pki_int/config/*" {
  capabilities = ["create", "read", "update"]
}

path "pki_int/roles/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

path "pki/issuer/*" {
  capabilities = ["read"]
}

path "pki_int/issuer/*" {
  capabilities = ["read"]
}

# Raft: autopilot's configuration (declared per stack); autopilot's state and stepping the active
# server down, for `platformctl rollout` after each deploy (step-down needs sudo: Vault's system
# backend lists it among its root paths).
path "sys/storage/raft/autopilot/configuration" {
  capabilities = ["create", "read", "update"]
}

path "sys/storage/raft/autopilot/state" {
  capabilities = ["read"]
}

path "sys/step-down" {
  capabilities = ["update", "sudo"]
}

# The provider creates a short-lived child token for each run.
path "auth/token/create" {
  capabilities = ["update"]
}

path "auth/token/lookup-self" {
  capabilities = ["read"]
}
