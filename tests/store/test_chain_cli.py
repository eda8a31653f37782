"""`xmpp-connect audit verify | checkpoint | anonymize` and `xmpp-connect export` on a configured store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chain_helpers import append_log, tamper
from store_helpers import T0

from xmpp_connect.app.cli import main
from xmpp_connect.model.checkpoint import generate_private_key_pem
from xmpp_connect.store.sqlite import SqliteStore


class SqliteFactory:
    backend = "sqlite"

    def __init__(self, location: str) -> None:
        self.location = location


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config file naming a SQLite store and a signing key file."""
    (tmp_path / "audit.key").write_text(generate_private_key_pem(), encoding="utf-8")
    monkeypatch.setenv("XC_TEST_TOKEN", "token-cli-1")
    config = tmp_path / "config.yaml"
    config.write_text(
        "storage: {kind: sqlite, path: store.sqlite3}\n"
        "accounts: [{ref: s, provider: sandbox, jid: a@sandbox.invalid/x}]\n"
        "tenants: [{id: t1, token_env: XC_TEST_TOKEN, accounts: [s]}]\n"
        "audit: {signing_key_file: audit.key}\n",
        encoding="utf-8",
    )
    return config


def test_verify_names_the_changed_entry_and_exits_1(configured: Path, capsys) -> None:
    store = SqliteStore(configured.parent / "store.sqlite3")
    ids = append_log(store, "t1")
    store.close()
    assert main(["audit", "checkpoint", "--config", str(configured)]) == 0
    assert main(["audit", "verify", "--config", str(configured)]) == 0
    assert "t1: 10 entries, 1 checkpoints (signatures checked)" in capsys.readouterr().out

    tamper(
        SqliteFactory(str(configured.parent / "store.sqlite3")),
        [("UPDATE evidence_events SET occurred_at = ? WHERE event_id = ?", ("2020-01-01T00:00:00Z", ids[7]))],
    )
    assert main(["audit", "verify", "--config", str(configured), "--json"]) == 1
    [report] = json.loads(capsys.readouterr().out)
    assert report["failure"]["event_id"] == ids[7] and report["failure"]["kind"] == "changed"


def test_export_anonymize_and_verify_the_bundle_offline(configured: Path, tmp_path: Path, capsys) -> None:
    store = SqliteStore(configured.parent / "store.sqlite3")
    append_log(store, "t1")
    store.close()
    bundle = tmp_path / "p1.jsonl"
    args = ["export", "--config", str(configured), "--tenant", "t1", "--participant", "participant-1"]
    assert main([*args, "--anonymize", "--output", str(bundle)]) == 0
    text = bundle.read_text(encoding="utf-8")
    assert "example.net" not in text and "participant-1" not in text
    assert main(["audit", "verify", "--bundle", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert "verifies" in out and "public key inside the bundle" in out

    bundle.write_text(text.replace('"late":0', '"late":1', 1), encoding="utf-8")
    assert main(["audit", "verify", "--bundle", str(bundle)]) == 1
    assert "REFUSED" in capsys.readouterr().out


def test_anonymizing_a_participant_keeps_the_log_verifiable(configured: Path, capsys) -> None:
    store = SqliteStore(configured.parent / "store.sqlite3")
    append_log(store, "t1")
    store.close()
    assert (
        main(
            [
                "audit",
                "anonymize",
                "--config",
                str(configured),
                "--tenant",
                "t1",
                "--participant",
                "participant-0",
            ]
        )
        == 0
    )
    assert "6 entries anonymized" in capsys.readouterr().out
    assert main(["audit", "verify", "--config", str(configured)]) == 0
    assert "6 anonymized" in capsys.readouterr().out


def test_export_without_a_selection_is_a_usage_error(configured: Path, capsys) -> None:
    assert main(["export", "--config", str(configured), "--tenant", "t1"]) == 2
    assert "--all" in capsys.readouterr().err


def test_keygen_prints_a_usable_key(capsys) -> None:
    assert main(["audit", "keygen"]) == 0
    assert capsys.readouterr().out.startswith("-----BEGIN PRIVATE KEY-----")


def test_bundle_time_range_selection(configured: Path, tmp_path: Path) -> None:
    store = SqliteStore(configured.parent / "store.sqlite3")
    append_log(store, "t1")
    store.close()
    bundle = tmp_path / "range.jsonl"
    since, until = (T0.replace(minute=1).isoformat(), T0.replace(minute=3).isoformat())
    args = ["export", "--config", str(configured), "--tenant", "t1", "--since", since, "--until", until]
    assert main([*args, "--output", str(bundle)]) == 0
    rows = [json.loads(line) for line in bundle.read_text(encoding="utf-8").splitlines()[1:]]
    assert sorted({r["row"]["message_id"] for r in rows if r["type"] == "entry"}) == ["m1", "m2"]
    assert main(["audit", "verify", "--bundle", str(bundle)]) == 0
