# The policy the IaC (pulumi up) runs with once the root token is revoked: it manages mounts, auth
# methods, policies, roles and audit devices, and writes static secrets. It cannot read dynamic
# database credentials or encrypt and decrypt with transit keys: those are the applications' own.

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

# PKI: CA set-up, URLs and roles.
path "pki*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# The provider creates a short-lived child token for each run.
path "auth/token/create" {
  capabilities = ["update"]
}

path "auth/token/lookup-self" {
  capabilities = ["read"]
}
