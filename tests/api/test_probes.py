"""Start-up that says what it is doing, over HTTP: the port opens at once, `/livez` and `/readyz` answer
without a token and name no tenant, and `/readyz`, `/adapter/health` and the log say for each account
whether it is connecting, connected or failing and why (refused, DNS, TLS, auth), against a closed loopback
port and the session's real Prosody."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import TOKENS, auth
from prosody import ProsodyServer, free_loopback_port
from starlette.testclient import TestClient

TOKEN = "probe-token-5d1e0b"
WAIT = 30.0
SERVE = "import sys; from xmpp_connect.app.cli import main; sys.exit(main(sys.argv[1:]))"
CONFIG = """\
storage: {{kind: sqlite, path: store.sqlite3}}
accounts:
  - {{ref: live, jid: "{good_jid}/adapter", password_env: XC_GOOD_PW, port: {port}, ca_certs: "{ca}"}}
  - {{ref: closed, jid: "{good_jid}/closed", password_env: XC_GOOD_PW, port: {closed_port}, ca_certs: "{ca}"}}
  - {{ref: nodns, jid: "{good_jid}/nodns", password_env: XC_GOOD_PW, host: no-such-host.invalid,
      ca_certs: "{ca}"}}
  - {{ref: badpw, jid: "{good_jid}/badpw", password_env: XC_BAD_PW, port: {port}, ca_certs: "{ca}"}}
  - {{ref: untrusted, jid: "{good_jid}/untrusted", password_env: XC_GOOD_PW, port: {port}}}
tenants:
  - {{id: ops-tenant, token_env: XC_PROBE_TOKEN, accounts: [live, closed, nodns, badpw, untrusted]}}
"""
EXPECTED = {
    "live": ("connected", None),
    "closed": ("failing", "refused"),
    "nodns": ("failing", "dns"),
    "badpw": ("failing", "auth"),
    "untrusted": ("failing", "tls"),
}


def test_probes_need_no_token_and_name_no_tenant(client: TestClient) -> None:
    live = client.get("/livez")
    assert (live.status_code, live.json()) == (200, {"status": "alive"})
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["checks"] == {"store": "ok", "policy": "ok"}
    assert body["accounts"] == {
        "sandbox-a": {"status": "connected", "reason": None},
        "sandbox-b": {"status": "connected", "reason": None},
    }
    text = ready.text
    assert all(secret not in text for secret in TOKENS.values())
    assert "tenant-a@" not in text and '"a"' not in text and "sandbox.invalid" not in text


def test_health_carries_each_accounts_connection(client: TestClient) -> None:
    accounts = client.get("/adapter/health", headers=auth("a")).json()["accounts"]
    assert [a["xmpp_account_ref"] for a in accounts] == ["sandbox-a"]
    connection = accounts[0]["connection"]
    assert connection["status"] == "connected" and connection["reason"] is None


@pytest.fixture
def served(prosody: ProsodyServer, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`xmpp-connect serve` with five accounts: one that works and one for each kind of failure."""
    user = prosody.fresh_user("probe")
    config = tmp_path / "xmpp-connect.yaml"
    config.write_text(CONFIG.format(good_jid=user.jid, port=prosody.port, closed_port=free_loopback_port(),
                                    ca=prosody.cert_path))
    port = free_loopback_port()
    log_path = tmp_path / "serve.log"
    env = {**os.environ, "XC_GOOD_PW": user.password, "XC_BAD_PW": "not-the-password",
           "XC_PROBE_TOKEN": TOKEN}
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-c", SERVE, "serve", "--config", str(config), "--port",
                                    str(port)], env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        yield f"http://127.0.0.1:{port}", log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def poll(url: str, log_path: Path, done: Any, what: str) -> httpx.Response:
    deadline = time.monotonic() + WAIT
    last: httpx.Response | None = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        except httpx.TransportError:
            last = None
        if last is not None and done(last):
            return last
        time.sleep(0.1)
    body = last.text if last is not None else "no answer"
    raise AssertionError(f"{what} not seen within {WAIT}s: {body}\n{log_path.read_text(errors='replace')}")


def statuses(response: httpx.Response) -> dict[str, tuple[str, str | None]]:
    return {ref: (a["status"], a["reason"]) for ref, a in response.json()["accounts"].items()}


@pytest.mark.prosody
def test_each_account_says_why_it_is_not_connected(served: tuple[str, Path]) -> None:
    base, log_path = served
    # The port answers while accounts are still failing: start-up does not wait for XMPP.
    first = poll(f"{base}/readyz", log_path, lambda r: r.status_code in (200, 503), "any /readyz answer")
    assert first.status_code == 503
    ready = poll(f"{base}/readyz", log_path, lambda r: statuses(r) == EXPECTED, "every account's state")
    assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
    assert "ops-tenant" not in ready.text and "probe" not in ready.text

    health = httpx.get(f"{base}/adapter/health", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    connections = {a["xmpp_account_ref"]: a["connection"] for a in health.json()["accounts"]}
    assert {ref: (c["status"], c["reason"]) for ref, c in connections.items()} == EXPECTED
    assert connections["closed"]["retrying"] is True and connections["nodns"]["retrying"] is True
    assert connections["badpw"]["retrying"] is False and connections["untrusted"]["retrying"] is False
    assert "refused" in connections["closed"]["reason_text"]

    log = log_path.read_text(errors="replace")
    for ref, (status, reason) in EXPECTED.items():
        wanted = f"account {ref}: " + ("connected to" if status == "connected" else f"failing: {reason} (")
        assert sum(wanted in line for line in log.splitlines()) == 1, log
    assert "not-the-password" not in log
