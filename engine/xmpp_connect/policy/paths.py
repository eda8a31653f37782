"""Where the default policy tables, their schemas and the scenario corpus live."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
BUNDLED_POLICY_DIR = PACKAGE_DIR / "_policy"
CHECKOUT_ROOT = PACKAGE_DIR.parent.parent


def default_policy_dir() -> Path:
    """`xmpp_connect/_policy/` inside an installed wheel, else the repository root of a checkout."""
    if (BUNDLED_POLICY_DIR / "rules").is_dir():
        return BUNDLED_POLICY_DIR
    return CHECKOUT_ROOT


def schema_dir(policy_dir: Path) -> Path:
    """The policy's own `spec/` when it has one, else the default policy's (a bare copy of the tables)."""
    own = policy_dir / "spec"
    if (own / "facts.schema.json").is_file():
        return own
    return default_policy_dir() / "spec"


def default_corpus_dir() -> Path:
    """The scenario corpus of a checkout (`tests/scenarios/`); not shipped in the wheel."""
    return CHECKOUT_ROOT / "tests" / "scenarios"
