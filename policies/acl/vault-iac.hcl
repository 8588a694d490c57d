# The policy the IaC (pulumi up) runs with once the root token is revoked: it manages mounts, auth
# methods, policies, roles and audit devices, and writes static secrets. It never reads dynamic
# database credentials, encrypts or decrypts with transit keys, or issues certificates: those are the
# applications' own. Note that a holder who writes policies and auth roles can grant itself anything:
# this policy is admin-equivalent. Only the deploy role of the GitHub Actions login has it: a job of
# this repository's main branch in the stack's deploy environment, for at most one hour.
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

# GitHub Actions' JWT login (CI) and people's OIDC login: their config and roles.
path "auth/github-actions/config" {
  capabilities = ["read", "update"]
}

path "auth/github-actions/role/*" {
  capabilities = ["create", "read", "update", "delete"]
}

path "auth/oidc/config" {
  capabilities = ["read", "update"]
}

path "auth/oidc/role/*" {
  capabilities = ["create", "read", "update", "delete"]
}

# People's external identity groups and their aliases: created by POST, then by the id Vault returns
# (a group that already exists is looked up by name to say so).
path "identity/group" {
  capabilities = ["update"]
}

path "identity/group/id/*" {
  capabilities = ["read", "update", "delete"]
}

path "identity/group/name/*" {
  capabilities = ["read"]
}

path "identity/group-alias" {
  capabilities = ["update"]
}

path "identity/group-alias/id/*" {
  capabilities = ["read", "update", "delete"]
}

# KV v2: the mount's config and the static secrets this program writes, never reads (it declares them
# with disable_read); destroying one deletes its latest version.
path "secret/config" {
  capabilities = ["read", "update"]
}

path "secret/data/*" {
  capabilities = ["create", "update", "delete"]
}

# A secret's versions, never its values: platformctl resume finds the first write of a run that died
# before recording it, and deletes it so that the next run's write (check-and-set 0) is accepted.
path "secret/metadata/*" {
  capabilities = ["read", "delete"]
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

# With a token login (the bootstrap run, break-glass), the provider creates a short-lived child token
# for each run; with the CI job's JWT login it uses the login token itself.
path "auth/token/create" {
  capabilities = ["update"]
}

path "auth/token/lookup-self" {
  capabilities = ["read"]
}
