"""The durable outbox over HTTP, on the sandbox provider: a send accepted while the stream is down is held and
written when it comes back (or expires past its bound); recovery after a restart writes an unacked send again
as a new attempt (at least once) or ends it with explicit evidence (at most once); a store that cannot write
answers 503 and marks nothing written. The real-server cases are tests/api/test_outbox_prosody.py."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from api_helpers import auth, send_request, wait_for
from starlette.testclient import TestClient

from xmpp_connect.config.loader import config_from_dict
from xmpp_connect.config.settings import ConfigError
from xmpp_connect.sending.outbox import DeliveryPolicy
from xmpp_connect.store.outbox import WRITTEN

ACCOUNT = "sandbox-a"


def entries(client: TestClient, message_id: str) -> list[dict[str, Any]]:
    return client.get(f"/adapter/messages/{message_id}/timeline", headers=auth()).json()["entries"]


def scenarios(client: TestClient, message_id: str) -> list[str]:
    return [e["scenario"] for e in entries(client, message_id)]


def subclass(client: TestClient, message_id: str) -> str:
    return client.get(f"/adapter/messages/{message_id}/assessment", headers=auth()).json()["subclass"]


def post(client: TestClient, request: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/adapter/actions", json=request, headers=auth())
    assert response.status_code == 202, response.text
    return response.json()


def test_send_while_the_stream_is_down_is_held_then_drained_in_order(client: TestClient) -> None:
    service = client.app.state.service
    provider = service.providers[ACCOUNT]
    client.portal.call(provider.stop)
    held = [post(client, send_request(f"held-{i}", "no-receipts@sandbox.invalid")) for i in range(3)]
    for result in held:
        assert result["accepted"] is True and result["reason"] is None, "held, not refused"
        message_id = result["xmpp_message_id"]
        assert scenarios(client, message_id) == ["adapter_accepted", "held_while_disconnected"]
        assert subclass(client, message_id) == "undef.channel_degraded"
    replay = post(client, send_request("held-0", "no-receipts@sandbox.invalid"))
    assert replay["idempotent_replay"] is True and replay["outbox_state"] == "accepted", "where it really is"
    client.portal.call(provider.start)
    for result in held:
        message_id = result["xmpp_message_id"]
        assert wait_for(lambda m=message_id: "server_acknowledged" in scenarios(client, m)), scenarios(
            client, message_id)
        assert subclass(client, message_id) != "undef.channel_degraded"
    written = [service.store.outbox_entry("a", stanza) for stanza in _stanzas(client, held)]
    assert [e.written_at for e in written] == sorted(e.written_at for e in written), "drained in order"
    replay = post(client, send_request("held-0", "no-receipts@sandbox.invalid"))
    assert replay["outbox_state"] == "server_acked"


def test_a_held_send_past_its_bound_expires_and_is_never_written(client: TestClient) -> None:
    service = client.app.state.service
    service.outbox.policies = {ACCOUNT: DeliveryPolicy(hold_while_disconnected_s=0.2)}
    provider = service.providers[ACCOUNT]
    client.portal.call(provider.stop)
    message_id = post(client, send_request("expire", "no-receipts@sandbox.invalid"))["xmpp_message_id"]
    assert wait_for(lambda: subclass(client, message_id) == "fail.expired", 10), scenarios(client, message_id)
    client.portal.call(provider.start)
    replay = post(client, send_request("expire", "no-receipts@sandbox.invalid"))
    assert replay["outbox_state"] == "expired"
    later = post(client, send_request("after-expiry", "no-receipts@sandbox.invalid"))["xmpp_message_id"]
    assert wait_for(lambda: "server_acknowledged" in scenarios(client, later))
    assert "sent_to_server" not in scenarios(client, message_id), "an expired held send is never written"


def test_restart_recovery_writes_an_unacked_send_again_as_a_new_attempt(client: TestClient) -> None:
    """As after a SIGKILL: the send was written, the ack never recorded; the next session writes it again
    with the same stanza id and origin-id, as the message's second attempt with its own evidence."""
    service = client.app.state.service
    message_id = post(client, send_request("again", "no-receipts@sandbox.invalid"))["xmpp_message_id"]
    assert wait_for(lambda: "server_acknowledged" in scenarios(client, message_id))
    stanza_id = _stanzas(client, [{"xmpp_message_id": message_id}])[0]
    _back_to_written(service, stanza_id)
    client.portal.call(_reconnect, service.providers[ACCOUNT])
    assert wait_for(lambda: len(_attempts(client, message_id)) == 2), _attempts(client, message_id)
    first, second = _attempts(client, message_id)
    assert first["stanza_id"] == second["stanza_id"] == stanza_id, "the same stanza id, so a copy is known"
    assert second["xmpp_attempt_id"] == first["xmpp_attempt_id"] + ".2"
    assert wait_for(lambda: _acked_attempts(client, message_id) >= {second["xmpp_attempt_id"]})
    by_attempt = [(e["scenario"], e["xmpp_attempt_id"]) for e in entries(client, message_id)]
    assert ("acceptance_unknown", first["xmpp_attempt_id"]) in by_attempt, "the lost write is flagged"
    assert service.store.outbox_entry("a", stanza_id).state == "server_acked"


def test_at_most_once_ends_an_unacked_send_with_explicit_evidence(client: TestClient) -> None:
    service = client.app.state.service
    service.outbox.policies = {ACCOUNT: DeliveryPolicy(delivery="at_most_once")}
    message_id = post(client, send_request("once", "no-receipts@sandbox.invalid"))["xmpp_message_id"]
    assert wait_for(lambda: "server_acknowledged" in scenarios(client, message_id))
    stanza_id = _stanzas(client, [{"xmpp_message_id": message_id}])[0]
    _back_to_written(service, stanza_id)
    client.portal.call(_reconnect, service.providers[ACCOUNT])
    assert wait_for(lambda: subclass(client, message_id) == "undef.server_acceptance_unknown"), scenarios(
        client, message_id)
    final = [e for e in entries(client, message_id) if e["scenario"] == "acceptance_unknown_final"]
    assert [e["event_type"] for e in final] == ["notification.attempt.acceptance_unknown"]
    assert len(_attempts(client, message_id)) == 1, "not written again"
    replay = post(client, send_request("once", "no-receipts@sandbox.invalid"))
    assert replay["outbox_state"] == "unknown"


def test_a_store_that_cannot_write_answers_503_and_marks_nothing_written(client: TestClient) -> None:
    """A full disk (SQLite's max_page_count reached): 503, no outbox row, no stanza; once there is room
    again the same request with the same key is carried out."""
    service = client.app.state.service
    store_path = service.config.storage.path
    post(client, send_request("warm-up", "no-receipts@sandbox.invalid"))
    with sqlite3.connect(store_path) as probe:
        pages = probe.execute("PRAGMA page_count").fetchone()[0]
        outbox_rows = probe.execute("SELECT count(*) FROM outbox").fetchone()[0]
    for conn in service.store._connections:
        conn.execute(f"PRAGMA max_page_count = {pages}")
    request = send_request("disk-full", "no-receipts@sandbox.invalid", content={"body": "x" * 20_000})
    response = client.post("/adapter/actions", json=request, headers=auth())
    assert response.status_code == 503, response.text
    assert response.json()["type"].endswith("store-unavailable")
    with sqlite3.connect(store_path) as probe:
        assert probe.execute("SELECT count(*) FROM outbox").fetchone()[0] == outbox_rows
    for conn in service.store._connections:
        conn.execute("PRAGMA max_page_count = 1073741823")
    again = post(client, request)
    assert again["accepted"] is True
    message_id = again["xmpp_message_id"]
    acked = wait_for(lambda: "server_acknowledged" in scenarios(client, message_id))
    assert acked, scenarios(client, message_id)


async def _reconnect(provider: Any) -> None:
    await provider.stop()
    await provider.start()


def _back_to_written(service: Any, stanza_id: str) -> None:
    """The store as a SIGKILL leaves it when the write was recorded and the ack was not."""
    with service.store.transaction():
        conn = service.store._conn()
        service.store._exec(conn, "UPDATE outbox SET state = ?, acked_at = NULL WHERE stanza_id = ?",
                            (WRITTEN, stanza_id))
    service.outbox._in_flight.pop(stanza_id, None)


def _attempts(client: TestClient, message_id: str) -> list[dict[str, Any]]:
    return client.get(f"/xmpp/messages/{message_id}", headers=auth()).json()["attempts"]


def _acked_attempts(client: TestClient, message_id: str) -> set[str]:
    acks = [e for e in entries(client, message_id) if e["scenario"] == "server_acknowledged"]
    return {e["xmpp_attempt_id"] for e in acks}


def _stanzas(client: TestClient, results: list[dict[str, Any]]) -> list[str]:
    return [_attempts(client, r["xmpp_message_id"])[0]["stanza_id"] for r in results]


def test_the_account_settings_are_read_with_their_defaults_and_checked(tmp_path: Any) -> None:
    def account(**extra: Any) -> Any:
        data = {"ref": "a", "provider": "sandbox", "jid": "a@sandbox.invalid/s", **extra}
        config = config_from_dict({"accounts": [data], "tenants": [
            {"id": "t", "token_env": "T", "accounts": ["a"]}]}, tmp_path, {"T": "token-0123456789abcdef"})
        return config.accounts[0]

    default = account()
    assert (default.delivery, default.while_disconnected, default.hold_while_disconnected_s) == (
        "at_least_once", "hold", 300.0)
    chosen = account(delivery="at_most_once", while_disconnected="refuse", hold_while_disconnected_s=5)
    assert (chosen.delivery, chosen.while_disconnected, chosen.hold_while_disconnected_s) == (
        "at_most_once", "refuse", 5.0)
    with pytest.raises(ConfigError, match="delivery"):
        account(delivery="exactly_once")
    with pytest.raises(ConfigError, match="hold_while_disconnected_s"):
        account(hold_while_disconnected_s=0)
