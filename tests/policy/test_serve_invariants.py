"""The running service refuses a policy that breaks an invariant: `xmpp-connect serve` on a copy of the tables
with the issue's overclaim edit (the SM-ack scenario pointed at success.delivered_to_client) exits with the
counterexample and never listens; on the intact copy it serves, and the same send to the sandbox's
no-receipts recipient is graded server acknowledgement only, not delivery. On SIGHUP it reloads a changed
policy that passes (new evidence carries the new version) and keeps running on the old one otherwise."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from xmpp_connect.policy.load import load_policy
from xmpp_connect.policy.paths import default_policy_dir

ROOT = default_policy_dir()
TOKEN = "invariants-token-2b7f11"
TOKEN_ENV = "XC_INVARIANTS_TOKEN"
SERVE = "import sys; from xmpp_connect.app.cli import main; sys.exit(main(sys.argv[1:]))"
EXIT_WAIT = 60.0
START_WAIT = 60.0
WAIT = 20.0
SERVER_ACK_OLD = "  assessment: {category: undef, subclass: undef.server_acknowledged_only, confidence: high}"
SERVER_ACK_NEW = "  assessment: {category: success, subclass: success.delivered_to_client, confidence: high}"
CONFIG = """\
data_dir: data
storage: {{kind: sqlite, path: data/store.sqlite3}}
policy_dir: {policy}
timers: {{receipt_timeout_s: 600}}
accounts:
  - {{ref: sandbox, provider: sandbox, jid: adapter@sandbox.invalid/service}}
tenants:
  - {{id: ops, token_env: {token_env}, accounts: [sandbox]}}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _setup(tmp_path: Path, overclaim: bool) -> tuple[list[str], Path]:
    policy = tmp_path / "policy"
    for name in ("rules", "mappings"):
        shutil.copytree(ROOT / name, policy / name)
    if overclaim:
        scenarios = policy / "mappings" / "scenarios.yaml"
        text = scenarios.read_text(encoding="utf-8")
        assert text.count(SERVER_ACK_OLD) == 1
        scenarios.write_text(text.replace(SERVER_ACK_OLD, SERVER_ACK_NEW), encoding="utf-8")
    config = tmp_path / "xmpp-connect.yaml"
    config.write_text(CONFIG.format(policy=policy, token_env=TOKEN_ENV), encoding="utf-8")
    port = _free_port()
    return [sys.executable, "-c", SERVE, "serve", "--config", str(config), "--port", str(port)], tmp_path


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _spawn(command: list[str], cwd: Path, spawned: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, env={**os.environ, TOKEN_ENV: TOKEN}, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd)
    spawned.append(process)
    return process


def test_serve_refuses_the_overclaiming_policy(tmp_path: Path,
                                               spawned: list[subprocess.Popen[bytes]]) -> None:
    command, cwd = _setup(tmp_path, overclaim=True)
    process = _spawn(command, cwd, spawned)
    try:
        output, _ = process.communicate(timeout=EXIT_WAIT)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"serve kept running on an overclaiming policy ({EXIT_WAIT}s)") from exc
    text = output.decode("utf-8", "replace")
    assert process.returncode == 1, text
    assert "breaks invariant server_acceptance_is_not_delivery (§23 Important mapping rule" in text
    assert "rule acceptance.server_acknowledged (rules/30_acceptance.yaml:" in text
    assert 'gives subclass success.delivered_to_client' in text
    assert 'counterexample fact: {"kind": "sm_ack"}' in text
    assert "Uvicorn running" not in text


def test_serve_on_the_intact_copy_grades_the_same_send_as_server_ack_only(
        tmp_path: Path, spawned: list[subprocess.Popen[bytes]]) -> None:
    command, cwd = _setup(tmp_path, overclaim=False)
    process = _spawn(command, cwd, spawned)
    base = f"http://127.0.0.1:{command[-1]}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base, headers=headers, timeout=5) as http:
        _wait_serving(http, process)
        response = http.post("/adapter/actions", json=_send("no-receipts@sandbox.invalid"))
        assert response.status_code == 202, response.text
        message_id = response.json()["xmpp_message_id"]
        assessment = _assessment_after_ack(http, message_id)
    assert assessment["category"] == "undef"
    assert assessment["subclass"] == "undef.server_acknowledged_only"


def _wait_serving(http: httpx.Client, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        assert process.poll() is None, "serve exited early"
        try:
            accounts = http.get("/adapter/health").json().get("accounts", [])
        except (httpx.TransportError, ValueError):
            accounts = []
        if accounts and all(a.get("stream_status") == "connected" for a in accounts):
            return
        time.sleep(0.1)
    raise AssertionError(f"the service did not serve within {START_WAIT}s")


def _assessment_after_ack(http: httpx.Client, message_id: str) -> dict[str, str]:
    deadline = time.monotonic() + WAIT
    last: dict[str, str] = {}
    while time.monotonic() < deadline:
        response = http.get(f"/adapter/messages/{message_id}/assessment")
        if response.status_code == 200:
            last = response.json()
            if last["subclass"] not in ("undef.pending", "undef.sent_to_server_only"):
                return last
        time.sleep(0.05)
    raise AssertionError(f"no server ack for {message_id} within {WAIT}s: {last}")


def _send(to: str) -> dict[str, object]:
    return {
        "request_id": "req-inv-1",
        "action_type": "notification.send",
        "coordination_case_id": "case_inv",
        "participant_id": "participant_inv",
        "channel": "xmpp",
        "content": {"body": "A document is available."},
        "target_endpoint": {"endpoint_type": "bare_jid", "value": to},
        "tracking_context": {"correlation_id": "corr-inv-1", "coordination_case_id": "case_inv",
                             "participant_id": "participant_inv", "notification_id": "inv-1"},
        "idempotency_key": "case_inv:participant_inv:xmpp:inv-1",
        "requested_at": "2026-01-01T12:00:00Z",
    }


def test_sighup_reloads_a_policy_that_passes_and_refuses_one_that_overclaims(
        tmp_path: Path, spawned: list[subprocess.Popen[bytes]]) -> None:
    command, cwd = _setup(tmp_path, overclaim=False)
    policy = tmp_path / "policy"
    first = load_policy(policy).version
    log_path = tmp_path / "serve.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, env={**os.environ, TOKEN_ENV: TOKEN}, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
    spawned.append(process)
    base = f"http://127.0.0.1:{command[-1]}"
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5) as http:
        _wait_serving(http, process)
        assert _acked_entry(http, "sighup-1")["policy_version"] == first

        scenarios = policy / "mappings" / "scenarios.yaml"
        text = scenarios.read_text(encoding="utf-8")
        scenarios.write_text(text.replace(SERVER_ACK_OLD, SERVER_ACK_OLD.replace("high}", "medium}")))
        second = load_policy(policy).version
        process.send_signal(signal.SIGHUP)
        _wait_logged(log_path, f"policy reloaded: {first} -> {second}")
        ack = _acked_entry(http, "sighup-2")
        assert (ack["policy_version"], ack["assessment"]["confidence"]) == (second, "medium")

        text = scenarios.read_text(encoding="utf-8")
        overclaim = SERVER_ACK_OLD.replace("high}", "medium}")
        scenarios.write_text(text.replace(overclaim, SERVER_ACK_NEW), encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        _wait_logged(log_path, f"policy reload refused, keeping {second}")
        assert "breaks invariant server_acceptance_is_not_delivery" in log_path.read_text(errors="replace")
        ack = _acked_entry(http, "sighup-3")
        assert ack["policy_version"] == second
        assert ack["assessment"]["subclass"] == "undef.server_acknowledged_only"
        assert process.poll() is None, "a refused reload leaves the service running"


def _acked_entry(http: httpx.Client, key: str) -> dict[str, Any]:
    """Send to the no-receipts recipient; its server-ack timeline entry (bounded wait)."""
    request = _send("no-receipts@sandbox.invalid")
    request.update(request_id=f"req-{key}", idempotency_key=f"case_inv:participant_inv:xmpp:{key}")
    response = http.post("/adapter/actions", json=request)
    assert response.status_code == 202, response.text
    message_id = response.json()["xmpp_message_id"]
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        entries = http.get(f"/adapter/messages/{message_id}/timeline").json().get("entries", [])
        for entry in entries:
            if entry["attempt_state"] == "server_acknowledged":
                return dict(entry)
        time.sleep(0.05)
    raise AssertionError(f"no server ack for {message_id} within {WAIT}s")


def _wait_logged(log_path: Path, text: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if text in log_path.read_text(encoding="utf-8", errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not logged within {WAIT}s:\n{log_path.read_text(errors='replace')}")
