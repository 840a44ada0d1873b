"""Every third-party module walletd imports comes from a package pyproject.toml declares, and every
declared package is pinned in requirements.txt (the lock `make lock` generates)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = (re.match(r"[A-Za-z0-9_.\-]+", spec) for spec in project["dependencies"])
    return {_canonical(match.group(0)) for match in names if match}


def _imported_modules() -> set[str]:
    modules: set[str] = set()
    for path in (ROOT / "walletd").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"walletd"}


def test_every_imported_package_is_a_declared_dependency() -> None:
    owners = packages_distributions()
    declared = _declared()
    undeclared = {
        module: sorted(owners.get(module, ["(not installed)"]))
        for module in sorted(_imported_modules())
        if not declared & {_canonical(dist) for dist in owners.get(module, [])}
    }
    assert undeclared == {}, "add these to [project.dependencies], then run `make lock`"


def test_every_declared_dependency_is_pinned_in_the_lock() -> None:
    lock = (ROOT / "requirements.txt").read_text()
    pinned = {_canonical(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==", lock, re.M)}
    assert _declared() - pinned == set(), "run `make lock`"
