"""The package layout follows the data flow: a stage imports only from the stages below it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "engine" / "xmpp_connect"

LAYERS = {
    "xmpp": 1,
    "model": 2,
    "config": 2,
    "api": 3,
    "store": 3,
    "providers": 3,
    "policy": 3,
    "facts": 4,
    "evidence": 5,
    "sending": 6,
    "app": 7,
}


def _imported_packages(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("xmpp_connect."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("xmpp_connect."))
    return found


def test_every_module_belongs_to_a_stage_package() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert loose == []
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} == set(LAYERS)


def test_no_stage_imports_from_a_stage_above_it() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if len(rel.parts) < 2:
            continue
        own = rel.parts[0]
        for other in _imported_packages(path):
            same_layer_other_stage = LAYERS[other] == LAYERS[own] and other != own
            if LAYERS[other] > LAYERS[own] or same_layer_other_stage:
                upward.append(f"{rel.as_posix()} imports xmpp_connect.{other}")
    assert upward == []
