"""vault-platform: HashiCorp Vault on Kubernetes for the selected stack: an environment (dev, staging,
prod), or one team's applications in it (``prod.payments``) when the environment states teamStacks."""

import pulumi

from components.platform import PLATFORM_NAME, VaultPlatform
from components.team_apps import TeamApps, TeamAppsArgs
from environment import SpecError
from environment.runtime import load_stack_spec
from render.acl import app_policy
from render.annotations import injector_annotations

try:
    spec = load_stack_spec()
except SpecError as error:
    # One clear message and a clean exit: nothing is declared from a config that does not validate.
    raise pulumi.RunError(str(error)) from None

if spec.team is not None:
    TeamApps(f"apps-{spec.team}", TeamAppsArgs(
        apps=spec.declared_apps, app_policies={app.name: app_policy(app, spec) for app in spec.declared_apps},
        vault=spec.vault, kubernetes_auth_path=spec.kubernetes_auth_path, kv=spec.kv, database=spec.database,
        declares=spec.declares))
    annotations = {app.name: injector_annotations(app, spec) for app in spec.declared_apps}
else:
    platform = VaultPlatform(PLATFORM_NAME, spec)
    annotations = platform.annotations
    pulumi.export("vaultAddress", platform.address)
    if platform.pki_csr is not None:
        pulumi.export("pkiIntermediateCsr", platform.pki_csr)
    if platform.next_steps is not None:
        pulumi.log.warn(platform.next_steps)
        pulumi.export("nextSteps", platform.next_steps)
for app_name, app_annotations in annotations.items():
    pulumi.export(f"{app_name}-annotations", app_annotations)
