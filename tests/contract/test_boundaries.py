"""Boundaries hold: the import graph has floors and no import runs up one.

From the bottom: libs (contracts, runtime) import no service, no gateway and not the `store`
command; a service imports libs and itself only; the gateway imports libs and itself only (it
reaches services through its HTTP clients); `cli/`, the composition root on top, may import
anything. Within the graph no modules import each other in a cycle.
"""

from __future__ import annotations

import ast
import functools
import importlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("catalog", "cart", "orders", "payments", "notifications")
PACKAGES = ("libs", "services", "gateway", "cli")


def python_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*.py") if "migrations" not in p.parts or p.name == "env.py"
    )


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _base_of(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module a `from ... import` names, relative ones resolved against `module`."""
    if node.level == 0:
        return node.module or ""
    package = module.split(".")
    # A module's package is its parent; a package's own __init__ is its package.
    drop = node.level - 1 if is_package else node.level
    base = package[: len(package) - drop] if drop else package
    return ".".join([*base, node.module] if node.module else base)


def imported_modules(path: Path, known: Iterable[str] = ()) -> set[str]:
    """Every module `path` imports, at any depth of the file (functions, TYPE_CHECKING blocks).

    `from package import name` counts as an import of `package.name` when that is a module of
    the repository, so a submodule imported through its package is an edge to the submodule.
    """
    known = set(known)
    tree = ast.parse(path.read_text(), filename=str(path))
    module, is_package = module_name(path), path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _base_of(node, module, is_package)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                names.add(full if full in known else base)
    return names


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """module -> the repository's modules it imports (third-party imports left out)."""
    paths = {module_name(p): p for package in PACKAGES for p in python_files(ROOT / package)}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        imported = imported_modules(path, paths)
        graph[module] = {name for name in imported if name in paths and name != module}
    return graph


def floor_violations(graph: Mapping[str, set[str]]) -> list[str]:
    """Every edge that runs up a floor or sideways into another service."""
    offenders = []
    for module, imported in graph.items():
        for target in imported:
            if not _may_import(module, target):
                offenders.append(f"{module} imports {target}")
    return sorted(offenders)


def _may_import(module: str, target: str) -> bool:
    source, dest = module.split("."), target.split(".")
    if source[0] == "cli":
        return True
    if dest[0] == "libs":
        return True
    if source[0] == "gateway":
        return dest[0] == "gateway"
    if source[0] == "services":
        return dest[0] == "services" and len(dest) > 1 and len(source) > 1 and dest[1] == source[1]
    return False  # libs import libs only


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One cycle per back edge found by a depth-first walk (empty when the graph is acyclic)."""
    found: list[list[str]] = []
    state: dict[str, str] = {}  # "open" while on the walk's path, "done" once left
    path: list[str] = []

    def walk(node: str) -> None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                walk(target)
        path.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            walk(node)
    return found


def test_no_import_runs_up_a_floor() -> None:
    assert floor_violations(import_graph()) == []


def test_no_modules_import_each_other_in_a_cycle() -> None:
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service_no_gateway_and_not_the_cli(service: str) -> None:
    graph = import_graph()
    own = f"services.{service}"
    assert own in graph
    offenders = [
        f"{module} imports {target}"
        for module, imported in graph.items()
        if module == own or module.startswith(f"{own}.")
        for target in imported
        if target.split(".")[0] in ("gateway", "cli")
        or (target.startswith("services.") and not target.startswith(f"{own}."))
    ]
    assert offenders == []


@pytest.mark.parametrize("service", SERVICES)
def test_a_services_handlers_import_no_other_service(service: str) -> None:
    """A consumer reads the contract's event, never another service's code."""
    path = ROOT / "services" / service / "handlers.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    assert any(
        isinstance(node, ast.AnnAssign | ast.Assign)
        and any(
            isinstance(target, ast.Name) and target.id == "HANDLERS"
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
        for node in tree.body
    ), f"{path.relative_to(ROOT)} holds no HANDLERS table"
    offenders = [
        module
        for module in imported_modules(path)
        if module.split(".")[0] in ("gateway", "cli")
        or (module.startswith("services.") and module.split(".")[1] != service)
    ]
    assert offenders == []


def test_the_gateway_imports_no_service_and_not_the_cli() -> None:
    offenders = [
        f"{module} imports {target}"
        for module, imported in import_graph().items()
        if module.split(".")[0] == "gateway"
        for target in imported
        if target.split(".")[0] in ("services", "cli")
    ]
    assert offenders == []


def test_libs_import_no_service_no_gateway_and_not_the_cli() -> None:
    # No exemption: the composition root lives in cli/, above every other floor.
    offenders = [
        f"{module} imports {target}"
        for module, imported in import_graph().items()
        if module.split(".")[0] == "libs"
        for target in imported
        if target.split(".")[0] in ("services", "gateway", "cli")
    ]
    assert offenders == []


def test_the_checks_see_a_broken_import() -> None:
    """The rules above fail on the imports they forbid (they are not vacuous)."""
    graph = {
        "libs.runtime.bus": {"cli.main"},
        "services.cart.handlers": {"services.orders.tables"},
        "gateway.app": {"services.cart.api"},
        "services.orders.service": {"services.orders.tables", "libs.runtime.bus"},
        "cli.main": {"gateway.app", "services.cart.app"},
        "services.orders.tables": {"services.orders.service"},
    }
    assert floor_violations(graph) == [
        "gateway.app imports services.cart.api",
        "libs.runtime.bus imports cli.main",
        "services.cart.handlers imports services.orders.tables",
    ]
    (cycle,) = cycles(graph)
    assert cycle[0] == cycle[-1]
    assert set(cycle) == {"services.orders.service", "services.orders.tables"}


def test_nothing_is_built_at_import_time() -> None:
    """Importing every app module builds no app, engine or client (create_app does)."""
    for name in [*(f"services.{s}.app" for s in SERVICES), "gateway.app"]:
        module = importlib.import_module(name)
        assert not any(
            type(value).__name__ in ("FastAPI", "AsyncEngine", "AsyncClient", "Redis")
            for value in vars(module).values()
        ), name
