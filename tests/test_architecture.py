"""The house rules of the code's structure, read from the source (nothing is imported):

* every module belongs to one layer of :data:`LAYERS` and imports only from its own layer or the ones before it;
* no import cycle, not even through an import inside a function;
* an import inside a function defers a heavy import on purpose and says so (``# deferred: ...`` on the first import
  of a block of imports, or the line above it);
* no function longer than :data:`MAX_FUNCTION_LINES` lines;
* ``docs/architecture.md`` names every module.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"graph_eigenmap": ROOT / "graph_eigenmap", "graph_eigenmap_cli": ROOT / "cli"}
MAX_FUNCTION_LINES = 80

LAYERS = [
    ("foundation", ["graph_eigenmap.errors", "graph_eigenmap.registry", "graph_eigenmap.config", "graph_eigenmap.files",
                    "graph_eigenmap.transfer", "graph_eigenmap.progress", "graph_eigenmap.host_memory",
                    "graph_eigenmap.distributed"]),
    ("data", ["graph_eigenmap.data", "graph_eigenmap.data.*"]),
    ("kernel", ["graph_eigenmap.kernel", "graph_eigenmap.metrics", "graph_eigenmap.inputs"]),
    ("model and objective", ["graph_eigenmap.models", "graph_eigenmap.objectives", "graph_eigenmap.objectives.*",
                             "graph_eigenmap.optim", "graph_eigenmap.scaling", "graph_eigenmap.feature_store"]),
    ("estimators", ["graph_eigenmap.estimators"]),
    ("training", ["graph_eigenmap.recipe", "graph_eigenmap.representation", "graph_eigenmap.checkpoint", "graph_eigenmap.reorder",
                  "graph_eigenmap.rayleigh_ritz", "graph_eigenmap.inference", "graph_eigenmap.artifacts",
                  "graph_eigenmap.train"]),
    ("api", ["graph_eigenmap.fit_outputs", "graph_eigenmap.shared_graph", "graph_eigenmap.api",
             "graph_eigenmap.transforms"]),
    ("evaluation", ["graph_eigenmap.protocol", "graph_eigenmap.baselines", "graph_eigenmap.baselines.*",
                    "graph_eigenmap.evaluation", "graph_eigenmap.evaluation.*"]),
    ("package", ["graph_eigenmap"]),
    ("cli", ["graph_eigenmap_cli", "graph_eigenmap_cli.*"]),
]
"""The pipeline's layers, first to last (``docs/architecture.md`` draws them)."""


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            found[".".join((package, *parts))] = path
    return found


MODULES = _modules()


def _layer(module: str) -> int:
    matches = [index for index, (_, patterns) in enumerate(LAYERS)
               if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns)]
    assert len(matches) == 1, f"{module} belongs to {len(matches)} layers of tests/test_architecture.py's LAYERS"
    return matches[0]


def _imports(module: str) -> list[tuple[str, ast.stmt, bool]]:
    """``(imported module, statement, inside a function)`` for each import of one of our modules."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, child, in_function) for alias in child.names if alias.name in MODULES
                             or alias.name.split(".")[0] in PACKAGES)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - child.level + 1] + ([base] if base else []))
                if base.split(".")[0] in PACKAGES:
                    for alias in child.names:
                        target = f"{base}.{alias.name}"
                        found.append((target if target in MODULES else base, child, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def _edges() -> dict[str, set[str]]:
    return {module: {target for target, _, _ in _imports(module)} - {module} for module in MODULES}


def test_every_module_has_one_layer():
    for module in MODULES:
        _layer(module)


def test_no_module_imports_from_a_later_layer():
    backward = [f"{module} ({LAYERS[_layer(module)][0]}) imports {target} ({LAYERS[_layer(target)][0]})"
                for module, targets in _edges().items() for target in targets if _layer(target) > _layer(module)]
    assert not backward, "\n".join(backward)


def test_no_import_cycle():
    edges, index, low, stack, on_stack, cycles = _edges(), {}, {}, [], set(), []

    def connect(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            connect(module)
    assert not cycles, f"import cycles: {cycles}"


def _import_groups(body: list[ast.stmt]):
    """Runs of consecutive import statements in a list of statements and in the blocks nested in it."""
    group = []
    for statement in body:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            group.append(statement)
            continue
        if group:
            yield group
            group = []
        for block in ("body", "orelse", "finalbody", "handlers"):
            nested = getattr(statement, block, None)
            if isinstance(nested, list) and nested and isinstance(nested[0], (ast.stmt, ast.excepthandler)):
                yield from _import_groups(nested)
    if group:
        yield group


def test_imports_inside_functions_say_why():
    silent = []
    for path in MODULES.values():
        lines = path.read_text().splitlines()
        tree = ast.parse(path.read_text())
        for function in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            for group in _import_groups(function.body):
                first = group[0].lineno
                said = "# deferred" in lines[first - 1] or "# deferred" in lines[first - 2]
                if not said:
                    silent.append(f"{path.relative_to(ROOT)}:{first}")
    assert not silent, ("imports inside functions without a '# deferred: why' comment on the first import of their "
                        "block or the line above it: " + ", ".join(sorted(set(silent))))


def test_no_function_is_longer_than_the_limit():
    long = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: " + ", ".join(long)


def test_architecture_page_names_every_module():
    page = (ROOT / "docs" / "architecture.md").read_text()
    missing = [str(path.relative_to(ROOT)) for path in MODULES.values()
               if path.name != "__init__.py" and str(path.relative_to(ROOT)) not in page]
    assert not missing, f"docs/architecture.md does not name: {missing}"


@pytest.mark.parametrize("module", ["graph_eigenmap.api", "graph_eigenmap.data.graph"])
def test_the_checks_read_real_imports(module):
    assert _imports(module), f"no imports found in {module}: the checks above would pass vacuously"


def test_architecture_page_shows_the_registries_as_they_are():
    from graph_eigenmap.registry import choices_markdown

    assert choices_markdown() in (ROOT / "docs" / "architecture.md").read_text(), \
        "regenerate the tables of docs/architecture.md with python -m graph_eigenmap.registry"
