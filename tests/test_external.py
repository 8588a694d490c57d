"""A Vault this stack does not deploy (``vault-platform:externalVault``): exact shapes on the test stack
``external`` (tests/stacks/Pulumi.external.yaml: prod's configuration of a Vault on Raft run elsewhere),
and every refusal with its message and fix.

Sources read: terraform-provider-vault v5.10.1, vault/resource_kubernetes_auth_backend_config.go
(``kubernetes_host``, ``kubernetes_ca_cert``, ``token_reviewer_jwt`` marked ``Sensitive``,
``disable_local_ca_jwt``, all written to ``auth/<path>/config``).
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from environment import ExternalVault, RaftAutopilot, StackRefused
from environment.external import CA_COMMAND, REVIEWER_FIX, SERVER_URL_COMMAND
from environment.sections import EXTERNAL_FILE_FIX
from platformctl.__main__ import main
from platformctl.adapters import stackfile
from platformctl.core.declaration import Declaration, access_of, is_secret, unwrap
from platformctl.core.diff import diff_plans, render_markdown
from platformctl.core.outside import checklist, checklist_text, needs_of
from platformctl.core.plan import plan_document, plan_text
from render.snapshots import cron_job, iam_trust_condition
from tests.guardrails.harness import not_applicable, reported, run_pack, stack_args
from tests.support import (
    DELETE,
    TEST_STACKS,
    apply_edits,
    declare_stack,
    edited,
    refusal,
    spec_of,
    spec_of_config,
)
from tests.test_kubernetes_schemas import KUBERNETES_VERSIONS, manifests
from vaultmodel.access import matrix_document

P = "vault-platform:"
X = f"{P}externalVault"
STACK = "external"
HOST = "https://A1B2C3D4E5F6.gr7.eu-west-1.eks.amazonaws.com"
ADDRESS = "https://vault.platform.example:8200"
CA_PEM = yaml.safe_load((TEST_STACKS / "stacks" / "Pulumi.external.yaml").read_text())["config"][X]["kubernetesCaCert"]
NO_SNAPSHOTS = {f"{P}snapshots": DELETE}


@pytest.fixture(scope="module")
def external() -> Declaration:
    declaration = declare_stack(STACK)
    assert declaration.error is None
    return declaration


def kubernetes_objects(declaration: Declaration) -> list[tuple[str, str, str]]:
    return [(r.type, r.inputs["metadata"]["name"], r.inputs["metadata"]["namespace"])
            for r in declaration.resources if r.custom and r.type.startswith("kubernetes:")]


class TestSpec:
    def test_the_test_stack(self) -> None:
        spec = spec_of(STACK)
        assert (spec.tier, spec.cluster, spec.monitoring) == ("prod", None, None)
        assert spec.external == ExternalVault(
            kubernetes_host=HOST, kubernetes_ca_cert=CA_PEM, token_reviewer_jwt_key="tokenReviewerJwt", raft=True,
            autopilot=RaftAutopilot(cleanup_dead_servers=True, dead_server_last_contact_threshold=600, min_quorum=5),
            jobs_namespace="vault-jobs", ca_secret_name="vault-ca")
        assert (spec.autopilot, spec.jobs_namespace, spec.ca_secret_name) == (
            spec.external.autopilot, "vault-jobs", "vault-ca")
        assert [(d.path, d.file_path) for d in spec.audit.devices] == [
            ("file", "/var/log/vault/vault-audit.log"), ("stdout", "stdout")]
        assert spec.audit.rotation is None

    def test_defaults_without_raft_snapshots_or_ca_secret(self) -> None:
        spec = spec_of(STACK, {f"{X}.raft": DELETE, f"{X}.autopilot": DELETE, f"{X}.caSecretName": DELETE,
                               **NO_SNAPSHOTS})
        assert spec.external is not None
        assert (spec.external.raft, spec.autopilot, spec.ca_secret_name, spec.jobs_namespace, spec.snapshots) == (
            False, None, None, "vault-jobs", None)

    @pytest.mark.parametrize(("changes", "expected"), [
        ({f"{X}.autopilot.minQuorum": 3}, RaftAutopilot(True, 600, 3)),
        # Vault refuses dead-server cleanup with a minimum quorum below 3.
        ({f"{X}.autopilot.minQuorum": 1}, RaftAutopilot(False, 600, 1)),
        ({f"{X}.autopilot.deadServerLastContactThreshold": "30m"}, RaftAutopilot(True, 1800, 5)),
        ({f"{P}tier": "staging", f"{P}kv.pathPrefix": "production"}, RaftAutopilot(True, 300, 5)),
    ])
    def test_autopilot_takes_the_voters_as_written(self, changes: dict[str, Any], expected: RaftAutopilot) -> None:
        assert spec_of(STACK, changes).autopilot == expected

    @pytest.mark.parametrize("host", ["https://10.0.12.7:6443", "https://api.apps.example.com/k8s/clusters/c-m-1",
                                      "https://[fd00::1]:443"])
    def test_any_api_server_url_vault_can_dial(self, host: str) -> None:
        external = spec_of(STACK, {f"{X}.kubernetesHost": host}).external
        assert external is not None
        assert external.kubernetes_host == host

    def test_staging_needs_no_snapshots_or_monitoring(self) -> None:
        spec = spec_of(STACK, {f"{P}tier": "staging", f"{P}kv.pathPrefix": "production", **NO_SNAPSHOTS})
        assert (spec.snapshots, spec.monitoring) == (None, None)


def refused(changes: dict[str, Any], key: str, **kwargs: Any) -> tuple[str, str]:
    problem = refusal(STACK, changes, key, **kwargs)
    return problem.problem, problem.fix


WITH_CLUSTER = {f"{P}cluster": {"chartVersion": "0.34.1", "replicas": 5}}
REFUSED: dict[str, tuple[dict[str, Any], str, str, str]] = {
    "both cluster and externalVault": (
        WITH_CLUSTER, X, "is set together with vault-platform:cluster: a stack either deploys its Vault or "
        "configures one it does not deploy", "remove vault-platform:cluster when the Vault runs elsewhere, or remove "
        "vault-platform:externalVault when this stack deploys it"),
    "neither": (
        {X: DELETE}, f"{P}cluster", "is not set: the stack says neither which Vault it deploys nor which one it "
        "configures", "declare vault-platform:cluster (the Helm release this stack deploys), or "
        "vault-platform:externalVault for a Vault that runs elsewhere (README, 'A Vault this stack does not deploy')"),
    "missing host": (
        {f"{X}.kubernetesHost": DELETE}, f"{X}.kubernetesHost", "is required but not set",
        f"set it to the URL Vault reaches the application cluster's API server at, e.g. from `{SERVER_URL_COMMAND}`"),
    "host over http": (
        {f"{X}.kubernetesHost": "http://10.0.12.7:6443"}, f"{X}.kubernetesHost",
        "'http://10.0.12.7:6443' is not https: Vault would send the token reviewer's JWT and every service account "
        "token it reviews in clear", "use the API server's https:// URL"),
    "in-cluster host": (
        {f"{X}.kubernetesHost": "https://kubernetes.default.svc:443"}, f"{X}.kubernetesHost",
        "'https://kubernetes.default.svc:443' names the API server as pods inside the cluster reach it: the Vault "
        "runs outside the cluster and cannot resolve it",
        f"use the address the Vault reaches the API server at, e.g. from `{SERVER_URL_COMMAND}`"),
    "host that is no URL": (
        {f"{X}.kubernetesHost": "api.example.com"}, f"{X}.kubernetesHost", "'api.example.com' is not a URL of an "
        "API server", "write it like https://api.cluster.example.com:6443, as the cluster's kubeconfig has it "
        f"(`{SERVER_URL_COMMAND}`)"),
    "host port out of range": (
        {f"{X}.kubernetesHost": "https://10.0.12.7:70000"}, f"{X}.kubernetesHost",
        "'https://10.0.12.7:70000': port 70000 is outside 1 to 65535", "use a port from 1 to 65535"),
    "missing CA": (
        {f"{X}.kubernetesCaCert": DELETE}, f"{X}.kubernetesCaCert", "is required but not set",
        "paste the CA of the application cluster's API server as a YAML block (kubernetesCaCert: |), e.g. from "
        f"`{CA_COMMAND}`"),
    "one audit device": (
        {f"{P}audit.devices": [{"path": "stdout", "filePath": "stdout"}]}, f"{P}audit.devices",
        "declares 1 audit device(s); prod needs at least 2: Vault stops answering requests when it cannot write "
        "to any audit device, so one failing device would stop the service",
        "declare a file device on an absolute path the Vault's servers can write and a second one to stdout or "
        "a socket"),
    "CA that is no PEM": (
        {f"{X}.kubernetesCaCert": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"}, f"{X}.kubernetesCaCert",
        "is not PEM certificates (no start line: cadata does not contain a certificate",
        "paste the CA certificate(s) that signed the application cluster's API server certificate, -----BEGIN "
        "CERTIFICATE----- to -----END CERTIFICATE-----, as a YAML block (kubernetesCaCert: |)"),
    "plaintext reviewer JWT": (
        {f"{X}.tokenReviewerJwt": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}, f"{X}.tokenReviewerJwt",
        "holds a plaintext value where a secret is required", "store the value with `pulumi config set --secret "
        "vault-platform:<key> <value>` and write {fromSecret: <key>} here"),
    "missing reviewer JWT": (
        {f"{X}.tokenReviewerJwt": DELETE}, f"{X}.tokenReviewerJwt", "is required but not set", REVIEWER_FIX),
    "cluster-only": (
        {f"{P}clusterOnly": True}, f"{P}clusterOnly", "is true, but the stack's Vault is external "
        "(vault-platform:externalVault): there is no cluster layer to declare first, and its operator initialized "
        "it", "remove it, and set the Vault login (vault:address, with githubActions or vault:token)"),
    "no login": (
        {"vault:token": DELETE, f"{P}githubActions": DELETE}, "vault:token", "is not set, and no other Vault login "
        "(githubActions with vault:address) is configured: the program cannot configure the external Vault",
        "set vault:address and declare githubActions (CI's login), or, for a run by hand, run `pulumi config set "
        "--secret vault:token <token>`"),
    "in-cluster database": (
        {f"{P}tier": "dev", f"{P}database.connections[0]": {"name": "postgres", "inCluster": True,
                                                           "database": "app", "adminUser": "vault_admin"}},
        f"{P}database.connections[0].inCluster", "the in-cluster PostgreSQL runs beside a Vault this stack "
        "deploys, and this stack's Vault is external",
        "point host, port and adminPassword at a PostgreSQL server the Vault reaches"),
    "relative audit path": (
        {f"{P}audit.devices[0].filePath": "vault-audit.log"}, f"{P}audit.devices[0].filePath",
        "'vault-audit.log' is not an absolute path of a file: the external Vault opens it on its own servers",
        EXTERNAL_FILE_FIX),
    "audit path through '..'": (
        {f"{P}audit.devices[0].filePath": "/var/log/vault/../audit.log"}, f"{P}audit.devices[0].filePath",
        "'/var/log/vault/../audit.log' is not an absolute path of a file: the external Vault opens it on its own "
        "servers", EXTERNAL_FILE_FIX),
    "missing audit path": (
        {f"{P}audit.devices[0].filePath": DELETE}, f"{P}audit.devices[0].filePath", "is required but not set",
        EXTERNAL_FILE_FIX),
    "audit rotation": (
        {f"{P}audit.rotation": {"retention": "30d"}}, f"{P}audit.rotation", "is set, but the stack's Vault is "
        "external: the log rotation runs beside the servers this program deploys",
        "remove it: the Vault's operator rotates its audit logs"),
    "monitoring": (
        {f"{P}monitoring": {"leaseThreshold": 1000}}, f"{P}monitoring", "is set, but the stack's Vault is external: "
        "the alert rules watch the servers, Raft and volumes of the Vault this program deploys, through the chart's "
        "ServiceMonitor", "remove it: the Vault's operator scrapes and alerts on it"),
    "snapshots without raft": (
        {f"{X}.raft": False, f"{X}.autopilot": DELETE}, f"{P}snapshots", "is set, but "
        "vault-platform:externalVault.raft is false: Raft snapshots need integrated storage", "remove snapshots (the "
        "Vault's operator backs it up), or set externalVault.raft to true if the Vault runs on integrated storage"),
    "autopilot without raft": (
        {f"{X}.raft": False, **NO_SNAPSHOTS}, f"{X}.autopilot", "is set, but raft is false: autopilot manages "
        "integrated (Raft) storage only", "set raft: true if the Vault runs on integrated storage, or remove "
        "autopilot"),
    "raft without its voters": (
        {f"{X}.autopilot.minQuorum": DELETE}, f"{X}.autopilot.minQuorum", "is required but not set",
        "set it to the external Vault's Raft voters (`vault operator raft list-peers`), e.g. 3 or 5"),
    "more voters than Raft takes": (
        {f"{X}.autopilot.minQuorum": 9}, f"{X}.autopilot.minQuorum", "9 is above the maximum of 7 (Vault recommends "
        "3 or 5 Raft voters; more slow every write)", "use 1 to 7"),
}
CONCRETE = ("cluster-only", "audit rotation", "monitoring", "more voters than Raft takes")
"""The refusals whose fix is one edit the spec then accepts; the others need a decision or a value."""


class TestRefused:
    @pytest.mark.parametrize("name", REFUSED)
    def test_the_problem_and_its_fix(self, name: str) -> None:
        changes, key, problem, fix = REFUSED[name]
        found, found_fix = refused(changes, key)
        # OpenSSL's own words end the PEM problem (with its source line): only their start is pinned.
        assert (found[:len(problem)] if "PEM" in problem else found, found_fix) == (problem, fix)

    @pytest.mark.parametrize("name", REFUSED)
    def test_a_concrete_fix_is_accepted(self, name: str) -> None:
        changes, key, _, _ = REFUSED[name]
        edits = refusal(STACK, changes, key).edits
        assert bool(edits) == (name in CONCRETE)
        if edits:
            fixed = apply_edits(STACK, changes, edits)
            assert spec_of_config(fixed).external is not None

    def test_a_reviewer_jwt_stored_in_plaintext_is_refused(self) -> None:
        keys = edited(STACK).secret_keys - {f"{P}tokenReviewerJwt"}
        assert refused({}, f"{P}tokenReviewerJwt", secret_keys=keys) == (
            "holds a plaintext value where a secret is required",
            "run `pulumi config set --secret vault-platform:tokenReviewerJwt <value>` to store it encrypted")

    def test_a_misspelt_host_is_named_as_such(self) -> None:
        problem = refusal(STACK, {f"{X}.kubernetesHost": DELETE, f"{X}.kubernetesHots": HOST}, f"{X}.kubernetesHots")
        assert (problem.problem, problem.fix) == ("is not a known key (did you mean 'kubernetesHost'?)",
                                                  "rename it to 'kubernetesHost', which is required")

    def test_every_problem_of_the_section_in_one_message(self) -> None:
        with pytest.raises(StackRefused) as error:
            spec_of(STACK, {**WITH_CLUSTER, f"{P}monitoring": {}, f"{P}audit.devices[0].filePath": "audit.log"})
        assert [p.key for p in error.value.problems] == [X, f"{P}audit.devices[file].filePath", f"{P}monitoring"]


class TestDeclared:
    def test_no_server_object_only_the_snapshot_job(self, external: Declaration) -> None:
        assert sorted(kubernetes_objects(external)) == [
            ("kubernetes:batch/v1:CronJob", "vault-snapshot", "vault-jobs"),
            ("kubernetes:core/v1:ServiceAccount", "vault-snapshot", "vault-jobs")]

    def test_without_snapshots_no_kubernetes_at_all(self) -> None:
        declaration = declare_stack(STACK, NO_SNAPSHOTS)
        assert declaration.error is None
        assert [r.name for r in declaration.resources if r.type.startswith(("kubernetes:", "pulumi:providers:k"))] == []

    def test_the_auth_method_reviews_tokens_from_outside_the_cluster(self, external: Declaration) -> None:
        config = external.named("vault-kubernetes-auth-config").inputs
        assert is_secret(config["tokenReviewerJwt"])
        assert unwrap(config) == {"backend": "kubernetes", "kubernetesHost": HOST, "kubernetesCaCert": CA_PEM,
                                  "tokenReviewerJwt": stackfile.PLACEHOLDER, "disableLocalCaJwt": True}

    def test_a_deployed_vault_reviews_with_its_own_pod(self) -> None:
        config = declare_stack("prod").named("vault-kubernetes-auth-config").inputs
        assert unwrap(config) == {"backend": "kubernetes", "kubernetesHost": "https://kubernetes.default.svc:443",
                                  "disableLocalCaJwt": False}

    def test_autopilot_is_declared_for_raft_only(self, external: Declaration) -> None:
        (autopilot,) = external.of_type("vault:index/raftAutopilot:RaftAutopilot")
        assert (autopilot.inputs["minQuorum"], autopilot.inputs["cleanupDeadServers"],
                autopilot.inputs["deadServerLastContactThreshold"]) == (5, True, "10m0s")
        without = declare_stack(STACK, {f"{X}.raft": DELETE, f"{X}.autopilot": DELETE, **NO_SNAPSHOTS})
        assert without.error is None
        assert without.of_type("vault:index/raftAutopilot:RaftAutopilot") == []

    def test_the_address_and_the_annotations(self, external: Declaration) -> None:
        assert external.outputs["vaultAddress"] == ADDRESS
        annotations = external.outputs["api-service-annotations"]
        assert (annotations["vault.hashicorp.com/tls-secret"], annotations["vault.hashicorp.com/ca-cert"]) == (
            "vault-ca", "/vault/tls/ca.crt")
        plain = declare_stack(STACK, {f"{X}.caSecretName": DELETE}).outputs["api-service-annotations"]
        assert [key for key in plain if key.endswith(("/tls-secret", "/ca-cert"))] == []

    def test_the_snapshot_job_reaches_the_vault_at_its_address(self, external: Declaration) -> None:
        spec = spec_of(STACK)
        job = cron_job(spec)
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        (save,) = pod["initContainers"]
        assert {e["name"]: e["value"] for e in save["env"]} == {
            "VAULT_ADDR": ADDRESS, "HOME": "/home", "VAULT_CACERT": "/vault/userconfig/vault-tls/ca.crt"}
        assert pod["volumes"] == [
            {"name": "snapshots", "emptyDir": {}}, {"name": "home", "emptyDir": {"sizeLimit": "64Mi"}},
            {"name": "vault-ca", "secret": {"secretName": "vault-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]
        assert iam_trust_condition(spec) == {"sub": "system:serviceaccount:vault-jobs:vault-snapshot",
                                             "aud": "sts.amazonaws.com"}
        role = external.named("vault-snapshots-role").inputs
        assert (role["boundServiceAccountNamespaces"], role["boundServiceAccountNames"]) == (
            ["vault-jobs"], ["vault-snapshot"])

    def test_the_jobs_objects_validate_against_the_kubernetes_schemas(self, external: Declaration) -> None:
        objects = [manifest for _, manifest in manifests(external)]
        assert sorted(manifest["kind"] for manifest in objects) == ["CronJob", "ServiceAccount"]
        for manifest in objects:
            for version in KUBERNETES_VERSIONS:
                kubernetes_validate.validate(manifest, version, strict=True)

    def test_without_a_ca_secret_the_job_trusts_the_images_roots(self) -> None:
        pod = cron_job(spec_of(STACK, {f"{X}.caSecretName": DELETE}))["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert [e["name"] for e in pod["initContainers"][0]["env"]] == ["VAULT_ADDR", "HOME"]
        assert [v["name"] for v in pod["volumes"]] == ["snapshots", "home"]


class TestGuardrails:
    EXTERNAL = ("the stack deploys no Vault server (no kubernetes:helm.sh/v3:Release; its Vault is external, "
                "vault-platform:externalVault)")

    @pytest.mark.parametrize("changes", [{}, NO_SNAPSHOTS])
    def test_the_whole_pack_passes(self, changes: dict[str, Any]) -> None:
        assert run_pack(declare_stack(STACK, changes), edited(STACK).tags) == []

    def test_snapshots_and_alerts_are_its_operators(self) -> None:
        args = stack_args(declare_stack(STACK, NO_SNAPSHOTS), edited(STACK).tags)
        assert not_applicable("raft-snapshots", args) == f"{self.EXTERNAL}: its operator backs it up"
        assert not_applicable("alert-rules", args) == f"{self.EXTERNAL}: its operator watches it"

    def test_a_snapshot_job_it_declares_is_still_checked(self, external: Declaration) -> None:
        args = stack_args(external, edited(STACK).tags)
        (job,) = [r for r in args.resources if r.resource_type == "kubernetes:batch/v1:CronJob"]
        job.props = {**job.props, "spec": {**job.props["spec"], "concurrencyPolicy": "Allow"}}
        assert reported("raft-snapshots", args) == [
            "the Raft snapshot CronJob vault-snapshots-cronjob may start a run while one is going: set "
            "spec.concurrencyPolicy to Forbid"]


class TestTools:
    def test_plan_masks_the_reviewer_jwt(self, external: Declaration) -> None:
        text = plan_text(external, edited(STACK))
        assert "      tokenReviewerJwt: [secret]\n" in text
        assert "Placeholders (not decrypted or not set on this machine): vault:token, " in text
        assert stackfile.PLACEHOLDER not in text
        assert "kubernetes:helm.sh/v3:Release" not in text

    def test_the_checklist_asks_for_the_vault_ca_from_its_operator(self) -> None:
        config = edited(STACK)
        needs = needs_of(config, spec_of_config(config))
        assert (needs.ca_secret, needs.ca_namespaces, needs.tls_source) == (
            "vault-ca", ("production", "vault-jobs"), None)
        text = checklist_text(checklist(needs))
        assert text[text.index("  [ ] Set stack secret 'vault-platform:tokenReviewerJwt' (not in "
                               "stacks/Pulumi.external.yaml yet: set it before `pulumi up`)") + 1] == (
            "        pulumi config set --secret --stack external vault-platform:tokenReviewerJwt")
        start = text.index("  [ ] Put the Vault CA secret 'vault-ca' (key ca.crt) in namespace 'production' (ca.crt: "
                           "the CA the external Vault's operator gives)")
        assert text[start + 1:start + 4] == [
            "        kubectl -n production create secret generic vault-ca --from-file=ca.crt",
            "  [ ] Put the Vault CA secret 'vault-ca' (key ca.crt) in namespace 'vault-jobs' (ca.crt: the CA the "
            "external Vault's operator gives)",
            "        kubectl -n vault-jobs create secret generic vault-ca --from-file=ca.crt"]

    def test_access_reaches_through_the_external_vaults_roles(self, external: Declaration) -> None:
        matrix = matrix_document(access_of(external))
        assert [(i["subject"], i["via"]) for i in matrix["identities"]][-2:] == [
            ("production/api-service-sa", "auth/kubernetes/role/api-service"),
            ("vault-jobs/vault-snapshot", "auth/kubernetes/role/vault-snapshot")]

    def test_the_diff_shows_a_moved_api_server_and_masks_the_jwt(self, external: Declaration) -> None:
        moved = declare_stack(STACK, {f"{X}.kubernetesHost": "https://10.0.12.7:6443"})
        markdown = render_markdown(diff_plans(plan_document(external), plan_document(moved)), "main")
        assert "**0 added, 0 removed, 1 changed**" in markdown
        assert f"  | `inputs.kubernetesHost` | `{HOST}` | `https://10.0.12.7:6443` |\n" in markdown
        assert stackfile.PLACEHOLDER not in markdown

    @pytest.mark.parametrize(("command", "why"), [
        ("rollout", "its servers are rolled by its operator"),
        ("preflight", "its unseal is its operator's, and there is no auto-unseal key to check")])
    def test_server_commands_say_the_vault_is_external(self, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str], command: str,
                                                       why: str) -> None:
        read = stackfile.read_stack
        monkeypatch.setattr(stackfile, "read_stack", lambda stack: read(stack, TEST_STACKS))
        assert main([command, STACK]) == 2
        assert capsys.readouterr() == ("", f"error: stack 'external': its Vault is external "
                                           f"(vault-platform:externalVault): this stack deploys no Vault server, and "
                                           f"{why}\n")
