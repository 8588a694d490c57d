# The policy a pull request's `pulumi preview` runs with (GitHub Actions JWT role `preview`): the
# preview runs unmerged code, so it writes nothing, reads no secret value and issues no credential.
# A plain preview reads nothing from Vault but its own token (the default policy's lookup-self); these
# paths are what a refresh reads of the configuration the program declares (the read calls of
# vault-iac-calls.yaml, from the provider's Read of each resource type; a test checks them, and the
# end-to-end tests run `preview --refresh` with it against a real Vault). KV secrets are declared never
# to be read back, so a refresh reads no secret value. Vault requires sudo even to read sys/auth/<path>
# and sys/audit: with read alone, sudo lets this role read them and nothing more.

# Audit devices and auth methods (their settings; root-protected, hence sudo).
path "sys/audit" {
  capabilities = ["read", "sudo"]
}

path "sys/auth/*" {
  capabilities = ["read", "sudo"]
}

# Mounts and their tuning (sys/mounts/<path>, sys/mounts/<path>/tune).
path "sys/mounts" {
  capabilities = ["read"]
}

path "sys/mounts/*" {
  capabilities = ["read"]
}

# Raft autopilot's settings.
path "sys/storage/raft/autopilot/configuration" {
  capabilities = ["read"]
}

# ACL policies (their text holds no secret).
path "sys/policies/acl" {
  capabilities = ["list"]
}

path "sys/policies/acl/*" {
  capabilities = ["read"]
}

# Auth methods' config and roles: the OIDC config never returns the client secret.
path "auth/kubernetes/config" {
  capabilities = ["read"]
}

path "auth/kubernetes/role/*" {
  capabilities = ["read", "list"]
}

path "auth/github-actions/config" {
  capabilities = ["read"]
}

path "auth/github-actions/role/*" {
  capabilities = ["read", "list"]
}

path "auth/oidc/config" {
  capabilities = ["read"]
}

path "auth/oidc/role/*" {
  capabilities = ["read", "list"]
}

# People's identity groups and their aliases.
path "identity/group/id/*" {
  capabilities = ["read"]
}

path "identity/group-alias/id/*" {
  capabilities = ["read"]
}

# KV v2: the mount's settings only, never secret/data or secret/metadata.
path "secret/config" {
  capabilities = ["read"]
}

# Database: connections (Vault never returns their passwords) and roles, never creds/.
path "database/config/*" {
  capabilities = ["read", "list"]
}

path "database/roles/*" {
  capabilities = ["read", "list"]
}

path "database/static-roles/*" {
  capabilities = ["read", "list"]
}

# Transit keys' settings (never exportable outside dev), never encrypt, decrypt or export.
path "transit/keys/*" {
  capabilities = ["read", "list"]
}

# PKI: CA certificates, URLs, CRL settings and roles, never issue/ or sign/.
path "pki/config/*" {
  capabilities = ["read"]
}

path "pki_int/config/*" {
  capabilities = ["read"]
}

path "pki/issuer/*" {
  capabilities = ["read"]
}

path "pki_int/issuer/*" {
  capabilities = ["read"]
}

path "pki_int/roles/*" {
  capabilities = ["read", "list"]
}
