"""The shape of the code, as rules that fail when broken: module and function sizes, no import cycles, no private
imports across the package boundary, and a start-up path that does not load the data layer."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("repository", "mcp_server", "migrations")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py") if ".cache" not in p.parts)


def _module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[0] == "bench":  # benchmarks run as scripts with bench/ on sys.path
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    """First-party modules `path` imports anywhere in it (functions and TYPE_CHECKING blocks included)."""
    found: set[str] = set()
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def test_product_modules_and_functions_stay_small():
    too_long = []
    for path in _sources(*PRODUCT):
        lines = path.read_text().count("\n")
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {lines} lines")
        if "versions" in path.parts:
            continue  # a migration is frozen history: rewritten to fit a style rule, it might no longer do the same
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}(): {length} lines")
    assert not too_long, "\n".join(too_long)


def test_no_import_cycles_anywhere():
    paths = _sources(*PRODUCT, "bench", "tests", "docs")
    names = {_module_name(p): p for p in paths}
    graph = {name: _imports(path, set(names)) - {name} for name, path in names.items()}
    cycles = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    assert not cycles, cycles


def test_private_modules_of_the_repository_stay_inside_it():
    leaks = []
    for path in _sources("mcp_server", "migrations", "bench", "tests", "docs"):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            if any(part.startswith("_") for m in modules if m.startswith("repository.") for part in m.split(".")[1:]):
                leaks.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not leaks, leaks


def test_migrations_import_the_repository_only_through_its_entry_point():
    wrong = []
    for path in _sources("migrations"):
        for node in ast.walk(ast.parse(path.read_text())):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            if module and module.startswith("repository") and module != "repository.migration_support":
                wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {module}")
    assert not wrong, wrong


@pytest.mark.slow
def test_the_server_starts_without_loading_the_data_layer():
    # A host waits for `initialize`: SQLAlchemy and the drivers load in a worker thread after it (mcp_server.state).
    code = (
        "import sys; import mcp_server.cli, mcp_server.app; "
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic', 'asyncpg')); "
        "assert not loaded, loaded"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
