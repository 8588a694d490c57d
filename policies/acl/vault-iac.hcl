# The policy the IaC (pulumi up) runs with once the root token is revoked: it manages mounts, auth
# methods, policies, roles and audit devices, and writes static secrets. It never reads dynamic
# database credentials, encrypts or decrypts with transit keys, or issues certificates: those are the
# applications' own. Note that a holder who writes policies and auth roles can grant itself anything:
# this token is admin-equivalent, so it lives only in the stacks' encrypted config and in CI.
#
# Exactly the calls in vault-iac-calls.yaml (what the provider sends for each resource type the
# program declares, and platformctl rollout's own): a test checks every committed stack's calls
# against this file and refuses a grant that no call uses.

# Mounts (enable, read, tune, disable), auth methods and audit devices (Vault root-protects
# sys/auth/* and sys/audit*: sudo).
path "sys/mounts/*" {
  capabilities = ["read", "update", "delete"]
}

path "sys/auth/*" {
  capabilities = ["read", "update", "delete", "sudo"]
}

path "sys/audit" {
  capabilities = ["read", "sudo"]
}

path "sys/audit/*" {
  capabilities = ["update", "delete", "sudo"]
}

path "sys/policies/acl/*" {
  capabilities = ["read", "update", "delete"]
}

# The Kubernetes auth method's config and roles.
path "auth/kubernetes/config" {
  capabilities = ["create", "read", "update"]
}

path "auth/kubernetes/role/*" {
  capabilities = ["create", "read", "update", "delete"]
}

# KV v2: the mount's config and the static secrets this program writes (reading a secret reads its
# metadata too; destroying one deletes its latest version).
path "secret/config" {
  capabilities = ["read", "update"]
}

path "secret/data/*" {
  capabilities = ["create", "read", "update", "delete"]
}

path "secret/metadata/*" {
  capabilities = ["read"]
}

# Database secrets engine: connections, roles and root rotation, never credentials.
path "database/config/*" {
  capabilities = ["create", "read", "update", "delete"]
}

path "database/roles/*" {
  capabilities = ["create", "read", "update", "delete"]
}

path "database/static-roles/*" {
  capabilities = ["create", "read", "update", "delete"]
}

path "database/rotate-root/*" {
  capabilities = ["update"]
}

# Transit keys' settings, never encrypt or decrypt.
path "transit/keys/*" {
  capabilities = ["create", "read", "update", "delete"]
}

# PKI through the issuer API of Vault 1.11 and later: generating the root and the intermediate's
# key and CSR, signing the intermediate, deleting the root's issuer (its id is Vault's), URLs, CRL
# settings and roles; never issue/*.
path "pki/issuers/generate/root/internal" {
  capabilities = ["update"]
}

path "pki/issuer/*" {
  capabilities = ["delete"]
}

path "pki/root/sign-intermediate" {
  capabilities = ["update"]
}

path "pki_int/issuers/generate/intermediate/internal" {
  capabilities = ["update"]
}

path "pki_int/intermediate/set-signed" {
  capabilities = ["update"]
}

path "pki/config/*" {
  capabilities = ["read", "update"]
}

path "pki_int/config/*" {
  capabilities = ["read", "update"]
}

path "pki_int/roles/*" {
  capabilities = ["create", "read", "update", "delete"]
}

# Raft: autopilot's configuration (declared per stack); autopilot's state and stepping the active
# server down, for `platformctl rollout` after each deploy (step-down needs sudo: Vault's system
# backend lists it among its root paths).
path "sys/storage/raft/autopilot/configuration" {
  capabilities = ["read", "update"]
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
