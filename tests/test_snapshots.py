"""Raft snapshots: the spec section, the job's Vault policy and role, its Kubernetes objects (exact
shapes on prod; their schemas in ``test_kubernetes_schemas``) and its AWS documents."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from environment import SpecError
from platformctl.core.declaration import Declaration, unwrap
from render.acl import parse_policy
from render.snapshots import (
    AWS_CLI_IMAGE,
    SNAPSHOT_DIR,
    VAULT_IMAGE,
    cron_job,
    lifecycle_rules,
    save_script,
    schedule,
    snapshot_policy,
    upload_script,
    uploader_iam_policy,
)
from tests.support import DELETE, spec_of
from tests.test_helm_values import chart_defaults
from vaultmodel.vault_acl import Acl

P = "vault-platform:"
PROD_SNAPSHOTS = {"interval": "1h", "retention": "30d", "bucket": "acme-vault-snapshots-prod",
                  "region": "eu-west-1", "roleArn": "arn:aws:iam::222222222222:role/vault-prod-snapshots"}


class TestSpec:
    def test_prod(self) -> None:
        snapshots = spec_of("prod").snapshots
        assert snapshots is not None
        assert (snapshots.interval, snapshots.retention_days, snapshots.bucket, snapshots.region,
                snapshots.role_arn) == (3600, 30, "acme-vault-snapshots-prod", "eu-west-1",
                                        "arn:aws:iam::222222222222:role/vault-prod-snapshots")

    def test_dev_takes_none_unless_asked(self) -> None:
        assert spec_of("dev").snapshots is None
        unset = ("interval", "retention")
        asked = spec_of("dev", {f"{P}snapshots": {k: v for k, v in PROD_SNAPSHOTS.items() if k not in unset}})
        assert asked.snapshots is not None
        assert (asked.snapshots.interval, asked.snapshots.retention_days) == (86400, 3)

    @pytest.mark.parametrize(("interval", "cron"), [("1h", "5 * * * *"), ("6h", "5 */6 * * *"),
                                                    ("12h", "5 */12 * * *"), ("24h", "5 0 * * *"),
                                                    ("1d", "5 0 * * *")])
    def test_the_interval_is_an_exact_schedule(self, interval: str, cron: str) -> None:
        spec = spec_of("prod", {f"{P}snapshots.interval": interval})
        assert spec.snapshots is not None
        assert schedule(spec.snapshots) == cron

    @pytest.mark.parametrize(("changes", "key", "words"), [
        ({f"{P}snapshots": DELETE}, "snapshots", "takes no Raft snapshots; prod requires them"),
        ({f"{P}snapshots.interval": "5h"}, "snapshots.interval", "use one of 1h, 2h, 3h, 4h, 6h, 8h, 12h, 1d"),
        ({f"{P}snapshots.interval": "90m"}, "snapshots.interval", "not a whole number of hours"),
        ({f"{P}snapshots.retention": "36h"}, "snapshots.retention", "not a whole number of days"),
        ({f"{P}snapshots.interval": "24h", f"{P}snapshots.retention": "1d"}, "snapshots.retention",
         "keep them at least 2d"),
        ({f"{P}snapshots.bucket": "Acme.Snapshots"}, "snapshots.bucket", "not a valid S3 bucket name"),
        ({f"{P}snapshots.roleArn": "vault-prod-snapshots"}, "snapshots.roleArn", "not an IAM role ARN"),
        ({f"{P}snapshots.region": "europe"}, "snapshots.region", "not a valid name"),
        ({f"{P}snapshots.schedule": "0 * * * *"}, "snapshots.schedule", "is not a known key"),
        ({"apps/ops/vault-snapshot.yaml:": {"namespace": "ops", "serviceAccount": "ops",
                                            "environments": {"prod": None}}},
         "apps/ops/vault-snapshot.yaml:", "snapshot job"),
        ({f"{P}policies[0].name": "vault-snapshot"}, "policies[vault-snapshot].name", "reserved"),
    ])
    def test_refused(self, changes: dict[str, Any], key: str, words: str) -> None:
        with pytest.raises(SpecError) as raised:
            spec_of("prod", changes)
        assert raised.value.key == (key if key.startswith("apps/") else f"{P}{key}")
        assert words in str(raised.value)


class TestVaultSide:
    def test_the_policy_reads_the_snapshot_path_only(self) -> None:
        rules = parse_policy(snapshot_policy(), "vault-snapshot")
        assert [(rule.path, rule.capabilities) for rule in rules] == [("sys/storage/raft/snapshot", ("read",)),
                                                                      ("auth/token/revoke-self", ("update",))]

    def test_declared_policy_and_role(self, declared: dict[str, Declaration]) -> None:
        prod = declared["prod"]
        assert unwrap(prod.named("vault-snapshots-policy").inputs) == {"name": "vault-snapshot",
                                                                       "policy": snapshot_policy()}
        role = unwrap(prod.named("vault-snapshots-role").inputs)
        assert role == {
            "backend": "kubernetes", "roleName": "vault-snapshot",
            "boundServiceAccountNames": ["vault-snapshot"], "boundServiceAccountNamespaces": ["vault"],
            "audience": "https://kubernetes.default.svc", "tokenPolicies": ["vault-snapshot"],
            "tokenNoDefaultPolicy": True, "tokenTtl": 600, "tokenMaxTtl": 600, "tokenType": "service",
        }

    def test_dev_declares_no_snapshot_job(self, declared: dict[str, Declaration]) -> None:
        assert [r.name for r in declared["dev"].resources if "snapshot" in r.name] == []

    def test_the_job_waits_for_the_auth_method(self, declared: dict[str, Declaration]) -> None:
        prod = declared["prod"]
        backend = prod.named("vault-kubernetes-auth-backend").urn
        assert backend in prod.named("vault-snapshots-role").dependencies


class TestCronJob:
    def test_prod_shape(self) -> None:
        job = cron_job(spec_of("prod"))
        spec = job["spec"]
        assert (job["metadata"]["name"], job["metadata"]["namespace"]) == ("vault-snapshot", "vault")
        assert {key: spec[key] for key in ("schedule", "timeZone", "concurrencyPolicy", "startingDeadlineSeconds",
                                           "successfulJobsHistoryLimit", "failedJobsHistoryLimit")} == {
            "schedule": "5 * * * *", "timeZone": "Etc/UTC", "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 1800, "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3}
        job_spec = spec["jobTemplate"]["spec"]
        assert (job_spec["backoffLimit"], job_spec["activeDeadlineSeconds"]) == (2, 1800)
        pod = job_spec["template"]["spec"]
        assert (pod["serviceAccountName"], pod["restartPolicy"]) == ("vault-snapshot", "Never")
        (save,), (upload,) = pod["initContainers"], pod["containers"]
        assert (save["image"], upload["image"]) == (VAULT_IMAGE, AWS_CLI_IMAGE)
        assert {e["name"]: e["value"] for e in save["env"]} == {
            "VAULT_ADDR": "https://vault-active.vault.svc:8200", "HOME": "/home",
            "VAULT_CACERT": "/vault/userconfig/vault-tls/ca.crt"}
        for container in (save, upload):
            assert set(container["resources"]) == {"requests", "limits"}
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
        # The shared volume: the CLI writes it, the uploader only reads it.
        assert {m["name"]: m.get("readOnly", False) for m in save["volumeMounts"]}["snapshots"] is False
        assert {m["name"]: m.get("readOnly", False) for m in upload["volumeMounts"]}["snapshots"] is True
        assert {"name": "vault-ca", "secret": {"secretName": "vault-tls",
                                               "items": [{"key": "ca.crt", "path": "ca.crt"}]}} in pod["volumes"]

    def test_without_tls_no_ca_is_mounted(self) -> None:
        spec = spec_of("dev", {f"{P}snapshots": PROD_SNAPSHOTS})
        save = cron_job(spec)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"][0]
        assert {e["name"] for e in save["env"]} == {"VAULT_ADDR", "HOME"}
        assert save["env"][0]["value"] == "http://vault-active.vault.svc:8200"

    def test_the_vault_cli_is_the_servers_version(self) -> None:
        image = chart_defaults()["server"]["image"]
        assert f"{image['repository']}:{image['tag']}" == VAULT_IMAGE

    def test_images_are_pinned_to_exact_versions(self) -> None:
        for image in (VAULT_IMAGE, AWS_CLI_IMAGE):
            tag = image.partition(":")[2]
            assert re.fullmatch(r"\d+\.\d+\.\d+", tag), image

    def test_scripts(self) -> None:
        spec = spec_of("prod")
        assert save_script(spec) == (
            "set -eu\n"
            'VAULT_TOKEN="$(vault write -field=token auth/kubernetes/login role=vault-snapshot '
            'jwt=@/var/run/secrets/kubernetes.io/serviceaccount/token)"\n'
            "export VAULT_TOKEN\n"
            "trap 'vault token revoke -self >/dev/null || echo \"the token was not revoked: it expires in 10 minutes\" "
            ">&2' EXIT\n"
            'name="vault-prod-$(date -u +%Y%m%dT%H%M%SZ).snap"\n'
            'vault operator raft snapshot save "/snapshots/$name"\n'
            'echo "$name" > /snapshots/name\n')
        assert upload_script(spec) == (
            "set -eu\n"
            'name="$(cat /snapshots/name)"\n'
            'aws s3 cp "/snapshots/$name" "s3://acme-vault-snapshots-prod/prod/$name" --checksum-algorithm SHA256 '
            "--only-show-errors\n"
            'echo "uploaded $name"\n')

    @pytest.mark.parametrize("saved", [0, 2])
    def test_the_token_is_revoked_whether_the_save_works_or_not(self, saved: int, tmp_path: Path) -> None:
        # The save script under sh, with a stand-in vault CLI that logs its calls and their token.
        (tmp_path / "bin").mkdir()
        (tmp_path / "snapshots").mkdir()
        vault = tmp_path / "bin" / "vault"
        vault.write_text(f'#!/bin/sh\necho "${{VAULT_TOKEN:-none}}: $*" >> {tmp_path}/calls\n'
                         f'case "$1 $2" in "write -field=token") echo s.snapshot ;; "operator raft") exit {saved} ;; '
                         "esac\n")
        vault.chmod(0o755)
        script = save_script(spec_of("prod")).replace(SNAPSHOT_DIR, str(tmp_path / "snapshots"))
        result = subprocess.run(["sh", "-c", script], env={"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"},
                                capture_output=True, text=True, check=False)
        assert result.returncode == saved
        calls = (tmp_path / "calls").read_text().splitlines()
        assert calls[0] == ("none: write -field=token auth/kubernetes/login role=vault-snapshot "
                            "jwt=@/var/run/secrets/kubernetes.io/serviceaccount/token")
        saved_to = rf"{tmp_path}/snapshots/vault-prod-\d{{8}}T\d{{6}}Z\.snap"
        assert re.fullmatch(rf"s\.snapshot: operator raft snapshot save {saved_to}", calls[1])
        assert calls[2:] == ["s.snapshot: token revoke -self"]
        assert ((tmp_path / "snapshots" / "name").exists()) is (saved == 0)

    def test_declared_as_rendered(self, declared: dict[str, Declaration]) -> None:
        inputs = unwrap(declared["prod"].named("vault-snapshots-cronjob").inputs)
        assert inputs["spec"]["schedule"] == cron_job(spec_of("prod"))["spec"]["schedule"]
        account = unwrap(declared["prod"].named("vault-snapshots-service-account").inputs)
        assert account["metadata"]["annotations"] == {
            "eks.amazonaws.com/role-arn": "arn:aws:iam::222222222222:role/vault-prod-snapshots"}


class TestAwsDocuments:
    def test_the_uploader_may_only_put_under_its_prefix_with_the_key(self) -> None:
        spec = spec_of("prod")
        assert spec.snapshots is not None
        key = "arn:aws:kms:eu-west-1:222222222222:key/k"
        assert uploader_iam_policy(spec.snapshots, "prod", key)["Statement"] == [
            {"Sid": "PutSnapshots", "Effect": "Allow", "Action": "s3:PutObject",
             "Resource": "arn:aws:s3:::acme-vault-snapshots-prod/prod/*"},
            {"Sid": "EncryptSnapshots", "Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
             "Resource": key},
        ]

    def test_lifecycle_expires_after_the_retention(self) -> None:
        spec = spec_of("staging")
        assert spec.snapshots is not None
        (rule,) = lifecycle_rules(spec.snapshots, "staging")
        assert (rule["Filter"], rule["Expiration"], rule["Status"]) == (
            {"Prefix": "staging/"}, {"Days": 14}, "Enabled")



class TestTheJobsToken:
    """What a token of the snapshot role may do, by Vault's ACL rules (``vaultmodel.vault_acl``): its
    policy alone (``token_no_default_policy``), so it takes snapshots and nothing else."""

    @pytest.fixture
    def acl(self) -> Acl:
        return Acl.of_texts({"vault-snapshot": snapshot_policy()}, default_policy=False)

    def test_it_may_take_a_snapshot(self, acl: Acl) -> None:
        assert acl.capabilities("sys/storage/raft/snapshot") == {"read"}

    def test_it_may_end_itself(self, acl: Acl) -> None:
        assert acl.capabilities("auth/token/revoke-self") == {"update"}

    @pytest.mark.parametrize(("capability", "path"), [
        ("update", "sys/storage/raft/snapshot"),          # a restore
        ("update", "sys/storage/raft/snapshot-force"),    # a forced restore
        ("read", "sys/storage/raft/configuration"),
        ("read", "secret/data/production/api-service"),
        ("read", "database/creds/api-role"),
        ("update", "auth/token/create"),
        ("read", "auth/token/lookup-self"),               # no default policy
        ("update", "auth/token/revoke"),                  # another token
        ("update", "transit/decrypt/payments-card-data"),
    ])
    def test_it_may_do_nothing_else(self, acl: Acl, capability: str, path: str) -> None:
        assert not acl.allows(capability, path)
