"""`xmpp-connect rules replay --message ID [--policy DIR]`: a message the running service stored (sandbox,
SQLite) re-assessed under the current policy (nothing changes) and under an edited copy (the changed entry
and the changed assessment are shown beside the stored ones; nothing is written back)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from api_helpers import TOKENS, auth, send_request, wait_for
from starlette.testclient import TestClient

from xmpp_connect.app.cli import main
from xmpp_connect.app.server import build_app, open_store
from xmpp_connect.app.service import AdapterService
from xmpp_connect.config.loader import load_config
from xmpp_connect.policy.paths import default_policy_dir

ROOT = default_policy_dir()
CONFIG = """\
storage: {{kind: sqlite, path: store.sqlite3}}
policy_dir: {policy}
timers: {{receipt_timeout_s: 600}}
accounts:
  - {{ref: sandbox-a, provider: sandbox, jid: tenant-a@sandbox.invalid/service}}
tenants:
  - {{id: a, token_env: TOKEN_A, accounts: [sandbox-a]}}
"""


def _stored_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str, dict]:
    """Send to the sandbox's no-receipts recipient through the service; wait for the server ack."""
    monkeypatch.setenv("TOKEN_A", TOKENS["TOKEN_A"])
    config_path = tmp_path / "xmpp-connect.yaml"
    config_path.write_text(CONFIG.format(policy=ROOT), encoding="utf-8")
    config = load_config(config_path)
    with TestClient(build_app(AdapterService(config, open_store(config)))) as client:
        result = client.post("/adapter/actions", json=send_request("replay-1", "no-receipts@sandbox.invalid"),
                             headers=auth()).json()
        message_id = result["xmpp_message_id"]

        def acked() -> dict | None:
            entries = client.get(f"/adapter/messages/{message_id}/timeline", headers=auth()).json()["entries"]
            return next((e for e in entries if e["event_type"] == "notification.attempt.accepted_by_provider"
                         and e["attempt_state"] == "server_acknowledged"), None)

        ack = wait_for(acked, timeout=10)
        assert ack, "no server ack from the sandbox"
    return config_path, message_id, ack


def test_replay_under_the_service_policy_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    config_path, message_id, ack = _stored_message(tmp_path, monkeypatch)
    assert main(["rules", "replay", "--config", str(config_path), "--message", message_id]) == 0
    out = capsys.readouterr().out
    assert f"{ack['scenario']} {ack['assessment']['subclass']} | same" in out
    assert "<- changes" not in out


def test_replay_under_an_edited_policy_shows_what_would_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    config_path, message_id, ack = _stored_message(tmp_path, monkeypatch)
    edited = tmp_path / "edited"
    for name in ("rules", "mappings"):
        shutil.copytree(ROOT / name, edited / name)
    scenarios = edited / "mappings" / "scenarios.yaml"
    old = ack["assessment"]["confidence"]
    new = "low" if old != "low" else "high"
    name = re.escape(ack["scenario"])
    block = re.compile(rf"(^{name}:\n(?:  .*\n)*?  assessment: \{{[^}}]*confidence: ){old}\}}", re.MULTILINE)
    text, count = block.subn(rf"\g<1>{new}}}", scenarios.read_text(encoding="utf-8"))
    assert count == 1
    scenarios.write_text(text, encoding="utf-8")

    code = main(["rules", "replay", "--config", str(config_path), "--message", message_id,
                 "--policy", str(edited)])
    out = capsys.readouterr().out
    assert code == 1, out
    assert f"{ack['scenario']} {ack['assessment']['subclass']} | {ack['scenario']} " \
           f"{ack['assessment']['subclass']} ({new})" in out
    assert f"  confidence: {old} | {new}   <- changes" in out
    assert main(["rules", "replay", "--config", str(config_path), "--message", message_id]) == 0, \
        "replay writes nothing back"
