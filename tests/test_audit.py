"""Audit devices: declared in every stack, at least two outside dev, secrets always HMAC'd, and
whatever is logged in clear named field by field."""

from __future__ import annotations

from typing import Any

import pytest

from components.audit import device_options
from environment.sections import AUDIT_DIRECTORY
from platformctl.core.declaration import Declaration, unwrap
from platformctl.core.plan import plan_text
from render.helm_values import AUDIT_MOUNT_PATH, helm_values
from tests.support import STACKS, declare_stack, edited, refusal, spec_of

AUDIT = "vault:index/audit:Audit"
MOUNT = "vault:index/mount:Mount"
DEVICES = "vault-platform:audit.devices"
FILE = {"path": "file", "filePath": "/vault/audit/vault-audit.log"}
STDOUT = {"path": "stdout", "filePath": "stdout"}
SOCKET = {"path": "fluent", "type": "socket", "address": "fluent-bit.logging:5170"}


def devices(declaration: Declaration) -> dict[str, dict[str, Any]]:
    return {r.inputs["path"]: unwrap(r.inputs) for r in declaration.of_type(AUDIT)}


class TestDeclared:
    @pytest.mark.parametrize("stack", STACKS)
    def test_every_stack_writes_to_the_audit_volume_and_to_stdout(self, declared: dict[str, Declaration],
                                                                   stack: str) -> None:
        assert devices(declared[stack]) == {
            "file": {"path": "file", "type": "file", "local": False,
                     "description": "Audit log to /vault/audit/vault-audit.log.",
                     "options": {"file_path": "/vault/audit/vault-audit.log", "format": "json",
                                 "hmac_accessor": "true", "log_raw": "false", "mode": "0600"}},
            "stdout": {"path": "stdout", "type": "file", "local": False, "description": "Audit log to stdout.",
                       "options": {"file_path": "stdout", "format": "json", "hmac_accessor": "true",
                                   "log_raw": "false"}},
        }

    @pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
    def test_devices_are_protected_in_every_tier(self, declared: dict[str, Declaration], stack: str) -> None:
        assert {r.protect for r in declared[stack].of_type(AUDIT)} == {True}

    @pytest.mark.parametrize("stack", STACKS)
    def test_a_changed_device_is_disabled_before_it_is_enabled_again(self, declared: dict[str, Declaration],
                                                                      stack: str) -> None:
        # Every field replaces a device, and its path takes one device: creating the new one first fails.
        assert {r.delete_before_replace for r in declared[stack].of_type(AUDIT)} == {True}
        # Everything else keeps Pulumi's default (create the replacement, then delete).
        assert {r.delete_before_replace for r in declared[stack].of_type(MOUNT)} == {False}

    def test_the_file_device_writes_to_the_volume_the_chart_mounts(self) -> None:
        assert AUDIT_DIRECTORY == AUDIT_MOUNT_PATH
        values = helm_values(spec_of("prod"))
        assert values["server"]["auditStorage"] == {"enabled": True, "size": "50Gi", "mountPath": "/vault/audit",
                                                    "accessMode": "ReadWriteOnce"}

    def test_a_socket_device(self) -> None:
        declaration = declare_stack("prod", {DEVICES: [FILE, SOCKET]})
        assert devices(declaration)["fluent"]["options"] == {
            "address": "fluent-bit.logging:5170", "socket_type": "tcp", "format": "json",
            "hmac_accessor": "true", "log_raw": "false"}

    def test_accessors_in_clear_only_when_asked_by_name(self) -> None:
        declaration = declare_stack("staging", {"vault-platform:audit.hmacAccessor": False})
        assert {d["options"]["hmac_accessor"] for d in devices(declaration).values()} == {"false"}
        assert {d["options"]["log_raw"] for d in devices(declaration).values()} == {"false"}

    def test_clear_keys_are_mount_tuning_of_exactly_the_named_mount(self, declared: dict[str, Declaration]) -> None:
        tuned = {r.inputs["path"]: (r.inputs.get("auditNonHmacRequestKeys"), r.inputs.get("auditNonHmacResponseKeys"))
                 for r in declared["prod"].of_type(MOUNT)}
        assert tuned == {
            "secret": (None, None), "database": (None, None), "transit": (None, None), "pki": (None, None),
            "pki_int": (["alt_names", "common_name", "ttl"], ["expiration", "serial_number"]),
        }

    def test_clear_keys_on_the_kv_mount(self) -> None:
        declaration = declare_stack("dev", {"vault-platform:audit.clearKeys": [
            {"mount": "secret", "request": ["version"]}]})
        kv = declaration.named("vault-kv-mount")
        assert kv.inputs["auditNonHmacRequestKeys"] == ["version"]
        assert "auditNonHmacResponseKeys" not in kv.inputs

    def test_dev_may_run_one_device(self) -> None:
        assert [d.path for d in spec_of("dev", {DEVICES: [STDOUT]}).audit.devices] == ["stdout"]

    def test_options_of_a_device(self) -> None:
        device = spec_of("prod").audit.devices[0]
        assert device_options(device, hmac_accessor=True)["log_raw"] == "false"

    def test_the_plan_shows_the_devices(self, declared: dict[str, Declaration]) -> None:
        text = plan_text(declared["prod"], edited("prod"))
        assert "+ vault:index/audit:Audit  vault-audit-file  [protected]" in text
        assert "options.log_raw: false" in text


@pytest.mark.parametrize(("stack", "changes", "key", "problem"), [
    ("prod", {DEVICES: [FILE]}, "audit.devices", "declares 1 audit device(s); prod needs at least 2"),
    ("staging", {DEVICES: [FILE]}, "audit.devices", "staging needs at least 2: Vault stops answering"),
    ("prod", {DEVICES: []}, "audit.devices", "declares 0 audit device(s)"),
    ("dev", {DEVICES: []}, "audit.devices", "dev needs at least 1"),
    ("prod", {DEVICES: [STDOUT, SOCKET]}, "audit.devices", "no device writes to the audit volume"),
    ("prod", {DEVICES: [{**FILE, "logRaw": True}, STDOUT]}, "audit.devices[0].logRaw", "in clear"),
    ("dev", {DEVICES: [{**STDOUT, "logRaw": True}]}, "audit.devices[0].logRaw", "in clear"),
    ("prod", {DEVICES: [{**FILE, "filePath": "/vault/data/audit.log"}, STDOUT]}, "audit.devices[0].filePath",
     "is not on the audit volume"),
    ("prod", {DEVICES: [{**FILE, "filePath": "/vault/audit/../data/x"}, STDOUT]}, "audit.devices[0].filePath",
     "is not on the audit volume"),
    ("prod", {DEVICES: [{**FILE, "filePath": "/vault/audit/"}, STDOUT]}, "audit.devices[0].filePath",
     "is not on the audit volume"),
    ("prod", {DEVICES: [{**FILE, "filePath": "/vault/audit/./vault-audit.log"}, STDOUT]},
     "audit.devices[0].filePath", "is not on the audit volume"),
    ("prod", {DEVICES: [FILE, {**STDOUT, "path": "file"}]}, "audit.devices[1].path", "a second audit device"),
    ("prod", {DEVICES: [FILE, {**FILE, "path": "file2"}]}, "audit.devices[1].filePath", "is already written"),
    ("prod", {DEVICES: [FILE, {**SOCKET, "address": "no-port"}]}, "audit.devices[1].address", "is not host:port"),
    ("prod", {DEVICES: [FILE, {**STDOUT, "type": "syslog"}]}, "audit.devices[1].type", "is not one of"),
    ("prod", {DEVICES: [FILE, {**SOCKET, "filePath": "stdout"}]}, "audit.devices[1].filePath",
     "does not apply to a socket device"),
    ("prod", {"vault-platform:audit.clearKeys": [{"mount": "kv2", "request": ["version"]}]},
     "audit.clearKeys[0].mount", "mount 'kv2' is not declared"),
    ("prod", {"vault-platform:audit.clearKeys": [{"mount": "database", "response": ["password"]}]},
     "audit.clearKeys[0].response[0]", "can carry a secret or a private key and is never logged in clear"),
    ("prod", {"vault-platform:audit.clearKeys": [{"mount": "secret", "request": ["data"]}]},
     "audit.clearKeys[0].request[0]", "'data' can carry a secret or a private key and is never logged in clear"),
    ("prod", {"vault-platform:audit.clearKeys": [{"mount": "transit", "response": ["ciphertext"]}]},
     "audit.clearKeys[0].response[0]", "'ciphertext' can carry a secret or a private key and is never logged in clear"),
    ("prod", {"vault-platform:audit.clearKeys": [{"mount": "transit", "request": ["input"]}]},
     "audit.clearKeys[0].request[0]", "'input' can carry a secret or a private key and is never logged in clear"),
    ("prod", {"vault-platform:audit.clearKeys": [{"mount": "transit"}]}, "audit.clearKeys[0]", "lists no keys"),
    ("prod", {"vault-platform:audit.hmacAcessor": False}, "audit.hmacAcessor", "did you mean 'hmacAccessor'?"),
])
def test_refused(stack: str, changes: dict[str, Any], key: str, problem: str) -> None:
    assert problem in str(refusal(stack, changes, f"vault-platform:{key}"))
