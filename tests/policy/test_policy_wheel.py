"""The wheel carries the default policy (rules/, mappings/, spec/) and, installed, reads it from there."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    if built.returncode != 0:
        pytest.skip(f"cannot build a wheel here (pip needs hatchling): {built.stderr[-300:]}")
    return next(out.glob("xmpp_connect-*.whl"))


def test_wheel_bundles_the_tables_and_schemas(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for table in ("scenarios", "stanza_errors", "grades", "commands", "precedence", "descriptor"):
        assert f"xmpp_connect/_policy/mappings/{table}.yaml" in names
    assert "xmpp_connect/_policy/spec/facts.schema.json" in names
    assert "xmpp_connect/_policy/spec/rules.schema.json" in names
    rules = {p.relative_to(REPO).as_posix() for p in (REPO / "rules").glob("*.yaml")}
    assert {f"xmpp_connect/_policy/{r}" for r in rules} <= names


def test_installed_wheel_reads_its_bundled_policy(wheel: Path, tmp_path: Path) -> None:
    zipfile.ZipFile(wheel).extractall(tmp_path)
    probe = subprocess.run(
        [sys.executable, "-c",
         "from xmpp_connect.policy.paths import default_policy_dir, schema_dir;"
         "d = default_policy_dir(); print(d); print(schema_dir(d))"],
        capture_output=True, text=True, timeout=60, check=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}, cwd=tmp_path,
    )
    policy_dir, spec_dir = probe.stdout.split()
    assert policy_dir == str(tmp_path / "xmpp_connect" / "_policy")
    assert spec_dir == str(tmp_path / "xmpp_connect" / "_policy" / "spec")
