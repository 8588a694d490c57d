"""The project's import graph: no cycle between modules, between packages or between top-level
packages, ``vaultmodel`` (the offline model of Vault, below everything else) imports nothing of the
project above it, the spec (``environment``) and the renderers (``render``) import no component, and
platformctl's layers import only downwards (pure cores below I/O below commands). Built with
:mod:`ast` from every ``.py`` file of the project's packages and ``__main__.py``; imports inside
functions count, since Python runs them too, and so does every package an import initialises on the
way (``import a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py``)."""

from __future__ import annotations

import ast
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("components", "environment", "platformctl", "policies", "render", "vaultmodel")
MODEL = "vaultmodel"
ABOVE_MODEL = ("components", "environment", "platformctl", "policies", "render", "benchmarks", "tests", "__main__")
"""What ``vaultmodel`` may not import: everything else of the project builds on it."""
BELOW: Mapping[str, tuple[str, ...]] = {MODEL: ABOVE_MODEL, "environment": ("components",), "render": ("components",)}
"""Top-level package -> the top-level packages above it, which it may not import even without a cycle. The
components take their section of the spec (``environment``) and the manifests the renderers (``render``)
make of it: the spec and the renderers sit below the components."""
PLATFORMCTL_LAYERS = (("platformctl.core",), ("platformctl.adapters",),
                      ("platformctl.commands", "platformctl.__main__"))
"""platformctl's layers, lowest first: a module imports nothing of a layer above its own. The pure cores
(decisions from values) stay testable without files, clusters or clouds; the I/O adapters read and
call for the commands, which tie both to the command line."""


@dataclass(frozen=True)
class Import:
    """One import statement of the project: ``importer`` needs each of ``loads`` run first."""

    importer: str
    """The module the statement is in."""
    imported: str
    """The module it names, absolute (``from . import x`` in ``a/b.py``: ``a.x``, if ``a/x.py`` exists)."""
    loads: tuple[str, ...]
    """The project's modules it runs: the packages on the way to the one imported, except the
    importer's own (already initialising when it runs), and the one imported, even the importer's own
    package (whose ``__init__`` may not have run far enough)."""
    where: str
    """``<file>:<line>``, the file relative to the project's root."""
    statement: str
    """The statement, on one line."""

    def evidence(self) -> str:
        return f"  {self.where} {self.statement}"


def project_modules(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Module name -> file, for every module of ``packages`` and of their sub-packages (folders with an
    ``__init__.py``: a policy pack's ``venv`` is none), and ``__main__.py``."""
    found: dict[str, Path] = {}

    def walk(directory: Path, package: str) -> None:
        for file in sorted(directory.glob("*.py")):
            found[package if file.name == "__init__.py" else f"{package}.{file.stem}"] = file
        for child in sorted(directory.iterdir()):
            if (child / "__init__.py").is_file():
                walk(child, f"{package}.{child.name}")

    for package in packages:
        if (root / package / "__init__.py").is_file():
            walk(root / package, package)
    if (root / "__main__.py").is_file():
        found["__main__"] = root / "__main__.py"
    return found


def _ancestors(module: str) -> list[str]:
    """``a.b.c`` -> ``a``, ``a.b``."""
    parts = module.split(".")
    return [".".join(parts[:depth]) for depth in range(1, len(parts))]


def imports_of(module: str, file: Path, root: Path, known: Collection[str]) -> Iterator[Import]:
    """Every import statement of ``module`` (anywhere in it) that names a module of the project."""
    source = file.read_text()
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    tops = {name.split(".")[0] for name in known} | set(ABOVE_MODEL)
    own = {module, *_ancestors(module)}
    for node in ast.walk(ast.parse(source, str(file))):
        if isinstance(node, ast.Import):
            named = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[:len(parts) - node.level + 1], *([node.module] if node.module else [])])
            named = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for imported in dict.fromkeys(named):
            if imported.split(".")[0] not in tops:
                continue
            loads = tuple(name for name in _ancestors(imported) if name in known and name not in own)
            if imported in known and imported != module:
                loads += (imported,)
            yield Import(module, imported, loads, f"{file.relative_to(root).as_posix()}:{node.lineno}",
                         ast.unparse(node))


Step = tuple[str, str, Import]
"""An edge of a graph: (from node, to node, an import that makes it)."""


def _cycles(imports: Iterable[Import], node_of: Callable[[str], str]) -> list[list[Step]]:
    """One shortest cycle through the first node of each strongly connected component (Tarjan's) of the
    graph whose nodes are ``node_of`` the modules."""
    edges: dict[str, dict[str, Import]] = {}
    for statement in sorted(imports, key=lambda found: (found.where, found.statement)):
        for loaded in statement.loads:
            source, target = node_of(statement.importer), node_of(loaded)
            if source != target:
                edges.setdefault(source, {}).setdefault(target, statement)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    strongly_connected: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in sorted(edges.get(node, {})):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = {stack.pop()}
            while node not in component:
                component.add(stack.pop())
            if len(component) > 1:
                strongly_connected.append(component)

    for node in sorted(edges):
        if node not in index:
            connect(node)
    cycles = []
    for component in strongly_connected:
        start = min(component)
        came_from: dict[str, str] = {}
        frontier = [start]
        while start not in came_from:
            reached = []
            for node in frontier:
                for successor in sorted(edges.get(node, {})):
                    if successor in component and successor not in came_from:
                        came_from[successor] = node
                        reached.append(successor)
            frontier = reached
        path = [start]
        while len(path) == 1 or path[-1] != start:
            path.append(came_from[path[-1]])
        path.reverse()
        cycles.append([(source, target, edges[source][target]) for source, target in pairwise(path)])
    return sorted(cycles, key=lambda cycle: cycle[0][0])


def layer_of(module: str) -> int | None:
    """The index in :data:`PLATFORMCTL_LAYERS` of ``module``'s layer; ``None`` outside them."""
    return next((index for index, layer in enumerate(PLATFORMCTL_LAYERS)
                 if any(module == top or module.startswith(f"{top}.") for top in layer)), None)


def problems(root: Path, packages: Iterable[str] = PACKAGES) -> list[str]:
    """Each cycle (between modules, packages, top-level packages), each import a package of :data:`BELOW`
    makes of one above it, and each import a platformctl layer makes of one above it, with the import
    statements that make it."""
    modules = project_modules(root, packages)
    imports = [found for module, file in modules.items() for found in imports_of(module, file, root, modules)]
    package_modules = {name for name, file in modules.items() if file.name == "__init__.py"}
    levels: Mapping[str, Callable[[str], str]] = {
        "module": lambda name: name,
        "package": lambda name: name if name in package_modules else (name.rpartition(".")[0] or name),
        "top-level package": lambda name: name.split(".")[0],
    }
    found: dict[str, str] = {}
    for level, node_of in levels.items():
        for cycle in _cycles(imports, node_of):
            chain = " -> ".join([cycle[0][0], *(target for _, target, _ in cycle)])
            found.setdefault(chain, "\n".join([f"{level} cycle: {chain}",
                                                *(statement.evidence() for _, _, statement in cycle)]))
    reports = list(found.values())
    for statement in imports:
        importer_top = statement.importer.split(".")[0]
        if statement.imported.split(".")[0] in BELOW.get(importer_top, ()):
            reports.append(f"{statement.importer} imports {statement.imported}, which {importer_top} is below:\n"
                           f"{statement.evidence()}")
        importer_layer, imported_layer = layer_of(statement.importer), layer_of(statement.imported)
        if importer_layer is not None and imported_layer is not None and imported_layer > importer_layer:
            reports.append(f"{statement.importer} imports {statement.imported}, which "
                           f"{PLATFORMCTL_LAYERS[importer_layer][0]} is below:\n{statement.evidence()}")
    return reports


def tree(root: Path, files: Mapping[str, str]) -> Path:
    """A project at ``root`` made of ``files`` (path -> text)."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_project_has_no_cycle_and_no_layer_imports_one_above_it() -> None:
    found = problems(ROOT)
    assert not found, "\n".join(found)


def test_the_graph_covers_every_package_and_the_program() -> None:
    modules = project_modules(ROOT)
    assert {"__main__", "environment", "environment.loader", "render.acl",
            "platformctl.__main__", "policies.guardrails.checks", "vaultmodel", "vaultmodel.rules"} <= set(modules)
    imported = {(statement.importer, loaded) for module, file in modules.items()
                for statement in imports_of(module, file, ROOT, modules) for loaded in statement.loads}
    assert {("render.acl", "environment"), ("environment.policies", "vaultmodel.rules"),
            ("policies.guardrails.checks", "platformctl.adapters.engine"),
            ("__main__", "components.platform")} <= imported


def test_a_cycle_through_an_import_inside_a_function_is_named_with_its_statements(tmp_path: Path) -> None:
    root = tree(tmp_path, {
        "environment/__init__.py": "",
        "environment/loader.py": "from environment import model\n",
        "environment/model.py": "def spec() -> None:\n    from environment.loader import load_spec\n",
    })
    assert problems(root) == [
        "module cycle: environment.loader -> environment.model -> environment.loader\n"
        "  environment/loader.py:1 from environment import model\n"
        "  environment/model.py:2 from environment.loader import load_spec",
    ]


def test_a_cycle_through_a_package_init_is_a_cycle(tmp_path: Path) -> None:
    root = tree(tmp_path, {
        "environment/__init__.py": "from .loader import load_spec\n",
        "environment/loader.py": "from environment import SpecError\n",
    })
    assert problems(root) == [
        "module cycle: environment -> environment.loader -> environment\n"
        "  environment/__init__.py:1 from .loader import load_spec\n"
        "  environment/loader.py:1 from environment import SpecError",
    ]


def test_a_package_importing_its_own_modules_is_no_cycle(tmp_path: Path) -> None:
    # A module's own packages are initialising when it runs: ``from . import model`` does not run them.
    root = tree(tmp_path, {
        "environment/__init__.py": "from .loader import load_spec\n",
        "environment/loader.py": "from . import model\nfrom .model import Spec\n",
        "environment/model.py": "",
    })
    assert problems(root) == []


def test_packages_that_import_each_other_are_a_cycle_though_their_modules_are_not(tmp_path: Path) -> None:
    root = tree(tmp_path, {
        "platformctl/__init__.py": "",
        "platformctl/options.py": "",
        "platformctl/plan.py": "from platformctl.core import reach\n",
        "platformctl/core/__init__.py": "",
        "platformctl/core/reach.py": "from platformctl import options\n",
    })
    assert problems(root) == [
        "package cycle: platformctl -> platformctl.core -> platformctl\n"
        "  platformctl/plan.py:1 from platformctl.core import reach\n"
        "  platformctl/core/reach.py:1 from platformctl import options",
    ]


def test_top_level_packages_that_import_each_other_are_a_cycle(tmp_path: Path) -> None:
    root = tree(tmp_path, {
        "components/__init__.py": "",
        "components/options.py": "",
        "components/platform.py": "import platformctl.adapters.engine\n",
        "platformctl/__init__.py": "",
        "platformctl/adapters/__init__.py": "",
        "platformctl/adapters/engine.py": "",
        "platformctl/core/__init__.py": "",
        "platformctl/core/plan.py": "from components import options\n",
    })
    assert problems(root) == [
        "top-level package cycle: components -> platformctl -> components\n"
        "  components/platform.py:1 import platformctl.adapters.engine\n"
        "  platformctl/core/plan.py:1 from components import options",
    ]


def test_vaultmodel_importing_what_is_above_it_is_refused_even_without_a_cycle(tmp_path: Path) -> None:
    root = tree(tmp_path, {
        "environment/__init__.py": "",
        "environment/durations.py": "",
        "platformctl/__init__.py": "",
        "vaultmodel/__init__.py": "",
        "vaultmodel/rules.py": ("def duration() -> str:\n"
                                "    from environment.durations import format_duration\n"
                                "    return format_duration(60)\n"),
        "vaultmodel/access.py": "import platformctl\n",
    })
    assert problems(root) == [
        "vaultmodel.access imports platformctl, which vaultmodel is below:\n"
        "  vaultmodel/access.py:1 import platformctl",
        "vaultmodel.rules imports environment.durations, which vaultmodel is below:\n"
        "  vaultmodel/rules.py:2 from environment.durations import format_duration",
    ]


def test_the_spec_or_a_renderer_importing_a_component_is_refused_even_without_a_cycle(tmp_path: Path) -> None:
    root = tree(tmp_path, {
        "components/__init__.py": "",
        "components/mounts.py": "",
        "components/options.py": "",
        "environment/__init__.py": "",
        "environment/loader.py": "def load_spec() -> None:\n    from components.mounts import MountSettings\n",
        "render/__init__.py": "",
        "render/helm_values.py": "from components import options\n",
        "render/acl.py": "from environment import loader\n",
    })
    assert problems(root) == [
        "environment.loader imports components.mounts, which environment is below:\n"
        "  environment/loader.py:2 from components.mounts import MountSettings",
        "render.helm_values imports components.options, which render is below:\n"
        "  render/helm_values.py:1 from components import options",
    ]


def test_a_platformctl_core_importing_io_or_a_command_is_refused_even_without_a_cycle(tmp_path: Path) -> None:
    root = tree(tmp_path, {
        "platformctl/__init__.py": "",
        "platformctl/__main__.py": "from platformctl.commands import plan_command\n",
        "platformctl/commands/__init__.py": "",
        "platformctl/commands/plan_command.py": "from platformctl.adapters.engine import declare\n",
        "platformctl/adapters/__init__.py": "",
        "platformctl/adapters/engine.py": "",
        "platformctl/core/__init__.py": "",
        "platformctl/core/plan.py": ("def plan_text() -> None:\n"
                                     "    from platformctl.adapters.engine import declare\n"),
        "platformctl/core/reach.py": "from platformctl.commands import plan_command\n",
    })
    assert problems(root) == [
        "platformctl.core.plan imports platformctl.adapters.engine, which platformctl.core is below:\n"
        "  platformctl/core/plan.py:2 from platformctl.adapters.engine import declare",
        "platformctl.core.reach imports platformctl.commands.plan_command, which platformctl.core is below:\n"
        "  platformctl/core/reach.py:1 from platformctl.commands import plan_command",
    ]
