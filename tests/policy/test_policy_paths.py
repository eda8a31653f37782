"""The default policy directory is the checkout's tables (or the wheel's bundled copy)."""

from __future__ import annotations

from pathlib import Path

from xmpp_connect.policy import paths


def test_default_policy_dir_is_the_checkout_root_with_its_tables() -> None:
    root = paths.default_policy_dir()
    repo = Path(__file__).resolve().parents[2]
    assert root == repo
    assert (root / "rules").is_dir()
    assert (root / "mappings").is_dir()
    assert (root / "spec" / "facts.schema.json").is_file()


def test_bundled_policy_wins_when_present(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "_policy" / "rules").mkdir(parents=True)
    monkeypatch.setattr(paths, "BUNDLED_POLICY_DIR", tmp_path / "_policy")
    assert paths.default_policy_dir() == tmp_path / "_policy"


def test_schema_dir_falls_back_to_the_default_spec_for_a_bare_table_copy(tmp_path: Path) -> None:
    assert paths.schema_dir(tmp_path) == paths.default_policy_dir() / "spec"
    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "facts.schema.json").write_text("{}")
    assert paths.schema_dir(tmp_path) == tmp_path / "spec"


def test_default_corpus_dir_is_the_checkout_corpus() -> None:
    assert paths.default_corpus_dir() == Path(__file__).resolve().parents[1] / "scenarios"
