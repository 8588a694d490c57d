# The platform team's break-glass administration policy. Attached to the platform team's own
# identities only (never to an application or to CI); every use is in the audit log.

path "sys/*" {
  capabilities = ["create", "read", "update", "patch", "delete", "list", "sudo"]
}

path "auth/*" {
  capabilities = ["create", "read", "update", "patch", "delete", "list", "sudo"]
}

path "secret/*" {
  capabilities = ["create", "read", "update", "patch", "delete", "list"]
}

path "database/*" {
  capabilities = ["create", "read", "update", "patch", "delete", "list"]
}

path "transit/*" {
  capabilities = ["create", "read", "update", "patch", "delete", "list"]
}

path "pki*" {
  capabilities = ["create", "read", "update", "patch", "delete", "list", "sudo"]
}
