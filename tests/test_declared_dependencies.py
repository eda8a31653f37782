"""Every third-party module the package imports is a declared runtime dependency, not only a test one.

The README's first command installs the package without its test extras; an import satisfied only by a
test dependency (as httpx once was) works in the test venv and fails on a fresh machine."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "engine" / "xmpp_connect"


def imported_top_level_modules() -> set[str]:
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("xmpp_connect", "__future__")}


def declared(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def test_every_imported_package_is_a_runtime_dependency() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = declared(project["dependencies"])
    distributions = packages_distributions()
    missing = {}
    for module in sorted(imported_top_level_modules()):
        owners = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        if not owners & runtime:
            missing[module] = sorted(owners)
    assert not missing, f"imported by engine/ but not in [project].dependencies: {missing}"
