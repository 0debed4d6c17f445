"""Boundaries hold: a service imports libs only, the gateway reaches services through its
clients only, libs import no service."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("catalog", "cart", "orders", "payments")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def python_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*.py") if "migrations" not in p.parts or p.name == "env.py"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service_and_not_the_gateway(service: str) -> None:
    offenders = []
    for path in python_files(ROOT / "services" / service):
        for module in imported_modules(path):
            top = module.split(".")
            if top[0] == "gateway" or (top[0] == "services" and len(top) > 1 and top[1] != service):
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []


def test_the_gateway_imports_no_service() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in python_files(ROOT / "gateway")
        for module in imported_modules(path)
        if module.split(".")[0] == "services"
    ]
    assert offenders == []


def test_libs_import_no_service_and_no_gateway() -> None:
    # The `store` command (libs/cli) is the composition root: it loads services by name, lazily.
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in python_files(ROOT / "libs")
        if "cli" not in path.parts
        for module in imported_modules(path)
        if module.split(".")[0] in ("services", "gateway")
    ]
    assert offenders == []


def test_nothing_is_built_at_import_time() -> None:
    """Importing every app module builds no app, engine or client (create_app does)."""
    import importlib

    for name in [*(f"services.{s}.app" for s in SERVICES), "gateway.app"]:
        module = importlib.import_module(name)
        assert not any(
            type(value).__name__ in ("FastAPI", "AsyncEngine", "AsyncClient", "Redis")
            for value in vars(module).values()
        ), name
