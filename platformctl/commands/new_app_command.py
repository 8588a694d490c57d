"""``platformctl new-app <team>/<name>``: writes a new application's file, ``apps/<team>/<name>.yaml``,
with its identity (namespace and service account) and the stacks it runs in, and checks that each
of those stacks accepts it, as the next ``bin/plan`` will. Its access (``kvPaths``, ``secrets``,
``databaseRoles``...) is added to the file afterwards (README, "Onboard an application").

Exit 0 once written; 1 when a stack refuses it (nothing is written); 2 when the name, a stack or the
file is not usable."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from environment import SpecError
from environment._reader import K8S_LABEL, K8S_SUBDOMAIN, follows
from environment.apps import APPS_DIR, SUFFIX, read_apps
from platformctl.adapters.config_schema import APP_SCHEMA, modeline
from platformctl.adapters.engine import ROOT
from platformctl.adapters.stackfile import read_stack, stack_spec, stacks
from platformctl.core.codeowners import CODEOWNERS, parse, unowned_team_folders

NAME = "new-app"
HELP = "write a new application's file, apps/<team>/<name>.yaml, that the stacks it names accept"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", metavar="team/name", help="the team folder and the application's name, e.g. "
                        "orders/orders-api")
    parser.add_argument("--namespace", help="Kubernetes namespace of its pods (default: the team's name)")
    parser.add_argument("--service-account", help="service account its pods run as (default: the application's "
                        "name; never 'default')")
    parser.add_argument("--environments", metavar="STACK,...", help=f"the stacks it runs in (default: every "
                        f"stack, {', '.join(stacks())})")


def run(args: argparse.Namespace) -> int:
    try:
        path, text, environments = new_app(args.app, args.namespace, args.service_account, args.environments, ROOT)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    new_folder = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    apps = read_apps(ROOT)
    for stack in environments:
        try:
            stack_spec(read_stack(stack, ROOT, apps))
        except SpecError as error:
            path.unlink()
            if new_folder:
                path.parent.rmdir()
            print(f"error: not written, stack {stack!r} refuses it: {error}", file=sys.stderr)
            return 1
    relative = path.relative_to(ROOT).as_posix()
    print(f"wrote {relative} (stacks: {', '.join(environments)})")
    print(f"next: give it its access in {relative} (README, \"Applications\"), then bin/plan <stack> --app "
          f"{path.stem}")
    owners = ROOT / CODEOWNERS
    for problem in unowned_team_folders(parse(owners.read_text()) if owners.is_file() else (), [path.parent.name]):
        print(f"note: {problem} (the platform team's change)")
    return 0


def new_app(app: str, namespace: str | None, service_account: str | None, environments: str | None,
            root: Path) -> tuple[Path, str, list[str]]:
    """The file to write for ``app`` (``<team>/<name>``), its text and its stacks; raises ``ValueError``
    when one of them is not usable."""
    team, slash, name = app.partition("/")
    if not slash or "/" in name:
        raise ValueError(f"{app!r} is not <team>/<name>: write the team's folder and the application's name, "
                         "e.g. orders/orders-api")
    known = stacks(root)
    chosen = [stack.strip() for stack in environments.split(",")] if environments else known
    values = {"team": team, "name": name, "--namespace": namespace or team,
              "--service-account": service_account or name}
    for what, value in values.items():
        rule = K8S_SUBDOMAIN if what == "--service-account" else K8S_LABEL
        if not follows(value, rule):
            raise ValueError(f"{what} {value!r} is not a valid name: use {rule.described}, at most "
                             f"{rule.max_length} characters")
    for stack in chosen:
        if stack not in known:
            raise ValueError(f"--environments: {stack!r} is not a stack of this project (stacks: {', '.join(known)})")
    path = root / APPS_DIR / team / f"{name}{SUFFIX}"
    if path.exists():
        raise ValueError(f"{path.relative_to(root).as_posix()} exists already: edit it instead")
    taken = [file.path for file in read_apps(root).files if file.name == name]
    if taken:
        raise ValueError(f"application {name!r} is {taken[0]} already (a name is unique across teams: it is a "
                         "Vault role): choose another name")
    lines = [modeline(path.relative_to(root), APP_SCHEMA.relative_to(ROOT)),
             f"# Application {name!r} of the team {team!r} (.github/CODEOWNERS: /{APPS_DIR}/{team}/): the keys",
             "# every stack reads, then each stack it runs in with what differs there (README, \"Applications\").",
             f"namespace: {values['--namespace']}",
             f"serviceAccount: {values['--service-account']}",
             "environments:",
             *(f"  {stack}:" for stack in chosen)]
    return path, "\n".join(lines) + "\n", chosen

