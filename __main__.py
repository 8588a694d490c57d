"""vault-platform: HashiCorp Vault on Kubernetes for the selected stack (dev, staging or prod)."""

import pulumi

from components.environment import SpecError
from components.environment.runtime import load_stack_spec
from components.platform import VaultPlatform

try:
    spec = load_stack_spec()
except SpecError as error:
    # One clear message and a clean exit: nothing is declared from a config that does not validate.
    raise pulumi.RunError(str(error)) from None

platform = VaultPlatform("vault", spec)
pulumi.export("vaultAddress", platform.address)
for app_name, annotations in platform.annotations.items():
    pulumi.export(f"{app_name}-annotations", annotations)
if platform.pki_csr is not None:
    pulumi.export("pkiIntermediateCsr", platform.pki_csr)
if platform.next_steps is not None:
    pulumi.log.warn(platform.next_steps)
    pulumi.export("nextSteps", platform.next_steps)
