"""The packages' dependencies point one way: no two of them import each other."""

from __future__ import annotations

import ast
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [
    "console.core",
    "console.audit",
    "console.accounts",
    "console.scim",
    "console.web",
    "integrations",
    "provisioning",
    "lifecycle",
    "reconciliation",
]


def _package_of(module: str) -> str | None:
    return next((p for p in PACKAGES if module == p or module.startswith(p + ".")), None)


def _imports() -> dict[str, set[str]]:
    """Each package and the others it imports anywhere in its code (at the top or inside a function)."""
    found: dict[str, set[str]] = {package: set() for package in PACKAGES}
    for package in PACKAGES:
        for path in (ROOT / package.replace(".", "/")).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
                elif isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                else:
                    continue
                found[package] |= {other for name in names if (other := _package_of(name)) not in (None, package)}
    return found


def test_no_two_packages_import_each_other() -> None:
    imports = _imports()
    mutual = [(a, b) for a, b in combinations(PACKAGES, 2) if b in imports[a] and a in imports[b]]
    assert mutual == []


def test_the_core_imports_no_app_and_the_console_no_app_above_it() -> None:
    imports = _imports()
    assert imports["console.core"] == set()
    for package in ("console.core", "console.audit", "console.accounts", "console.scim", "console.web"):
        assert not imports[package] & {"integrations", "provisioning", "lifecycle", "reconciliation"}, package
    assert "lifecycle" not in imports["integrations"] | imports["provisioning"]
    assert "reconciliation" not in imports["integrations"] | imports["provisioning"] | imports["lifecycle"]
