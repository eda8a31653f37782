"""§32.2 displayed marker, §32.3 ACK reply, stanza errors, ingest, a restart mid-flow (sandbox network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from api_helpers import (
    OpenApiContract,
    auth,
    default_policy,
    open_client,
    send_request,
    service_config,
    wait_for,
)
from starlette.testclient import TestClient

from xmpp_connect.app.server import build_app
from xmpp_connect.app.service import AdapterService
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.store.sqlite import SqliteStore


def send(client: TestClient, key: str, to: str) -> str:
    result = client.post("/adapter/actions", json=send_request(key, to), headers=auth()).json()
    assert result["accepted"] is True
    return result["xmpp_message_id"]


def evidence(client: TestClient, message_id: str) -> dict[str, str]:
    entries = client.get(f"/adapter/messages/{message_id}/timeline", headers=auth()).json()["entries"]
    return {e["event_type"]: e["assessment"]["subclass"] for e in entries}


def assessment(client: TestClient, message_id: str) -> dict:
    return client.get(f"/adapter/messages/{message_id}/assessment", headers=auth()).json()


def test_displayed_marker_is_opened_evidence_not_comprehension(client: TestClient) -> None:
    message_id = send(client, "d1", "displayed@sandbox.invalid")
    seen = wait_for(
        lambda: (
            "interaction.notification.opened" in evidence(client, message_id) and evidence(client, message_id)
        )
    )
    assert seen["interaction.notification.opened"] == "success.displayed_by_client"
    assert seen["notification.endpoint.accepted"] == "success.delivered_to_client"
    result = assessment(client, message_id)
    assert result["subclass"] == "success.displayed_by_client"
    assert result["strongest_signal"] == "success.displayed_by_client"


def test_ack_reply_is_recorded_as_acknowledgement(client: TestClient) -> None:
    message_id = send(client, "a1", "replies-ack@sandbox.invalid")
    seen = wait_for(
        lambda: (
            "interaction.acknowledgement_recorded" in evidence(client, message_id)
            and evidence(client, message_id)
        )
    )
    assert seen["interaction.acknowledgement_recorded"] == "success.acknowledged_by_client"
    assert assessment(client, message_id)["subclass"] == "success.acknowledged_by_client"


@pytest.mark.parametrize(
    ("recipient", "event_type", "category"),
    [
        ("error-item-not-found@sandbox.invalid", "notification.endpoint.rejected_permanent", "fail"),
        ("error-remote-server-timeout@sandbox.invalid", "notification.endpoint.rejected_temporary", "undef"),
        ("nobody@sandbox.invalid", "notification.endpoint.rejected_permanent", "fail"),
    ],
)
def test_stanza_errors_are_classified(
    client: TestClient, recipient: str, event_type: str, category: str
) -> None:
    message_id = send(client, recipient.split("@")[0], recipient)
    assert wait_for(lambda: event_type in evidence(client, message_id)), evidence(client, message_id)
    assert assessment(client, message_id)["category"] == category


def test_two_devices_each_receipt_recorded_once(client: TestClient) -> None:
    def receipts(message_id: str) -> list[dict]:
        entries = client.get(f"/adapter/messages/{message_id}/timeline", headers=auth()).json()["entries"]
        return [e for e in entries if e["event_type"] == "notification.endpoint.accepted"]

    message_id = send(client, "t1", "two-devices@sandbox.invalid")
    assert wait_for(lambda: len(receipts(message_id)) >= 2), "one receipt per resource, none lost"
    # The sandbox answers in the order of the sends: once a later message has both its receipts, any
    # further receipt of the first would have been recorded already.
    later = send(client, "t1-later", "two-devices@sandbox.invalid")
    assert wait_for(lambda: len(receipts(later)) >= 2)
    assert len(receipts(message_id)) == 2, "one receipt per resource, neither lost nor doubled"


def test_bridged_stanza_goes_through_the_same_pipeline(client: TestClient, contract: OpenApiContract) -> None:
    message_id = send(client, "b1", "no-receipts@sandbox.invalid")
    stanza_id = client.get(f"/xmpp/messages/{message_id}", headers=auth()).json()["attempts"][0]["stanza_id"]
    raw = (
        "<message xmlns='jabber:client' from='no-receipts@sandbox.invalid/legacy'"
        " to='tenant-a@sandbox.invalid' id='bridge-1'>"
        f"<received xmlns='urn:xmpp:receipts' id='{stanza_id}'/></message>"
    )
    response = client.post("/adapter/events/provider", json={"raw": raw}, headers=auth())
    contract.check(response, "/adapter/events/provider", "post")
    (observation,) = response.json()["observations"]
    assert observation["xmpp_message_id"] == message_id
    assert observation["event_types"] == ["notification.endpoint.accepted"]
    garbage = client.post("/adapter/events/provider", json={"raw": "<not-xml"}, headers=auth())
    assert garbage.status_code == 202 and garbage.json()["observations"] == []


def test_restart_mid_flow_keeps_idempotency_and_late_evidence(tmp_path: Path) -> None:
    config = service_config(tmp_path)
    with open_client(config) as client:
        first = client.post(
            "/adapter/actions", json=send_request("r1", "offline@sandbox.invalid"), headers=auth()
        )
        message_id = first.json()["xmpp_message_id"]
        wait_for(lambda: "notification.attempt.accepted_by_provider" in evidence(client, message_id))
    with open_client(config) as client:
        replay = client.post(
            "/adapter/actions", json=send_request("r1", "offline@sandbox.invalid"), headers=auth()
        )
        assert replay.json()["adapter_operation_id"] == first.json()["adapter_operation_id"]
        assert replay.json()["idempotent_replay"] is True
        assert "notification.attempt.accepted_by_provider" in evidence(client, message_id)
        stanza_id = client.get(f"/xmpp/messages/{message_id}", headers=auth()).json()["attempts"][0][
            "stanza_id"
        ]
        raw = (
            "<message xmlns='jabber:client' from='offline@sandbox.invalid/phone'"
            " to='tenant-a@sandbox.invalid' id='late-1'>"
            f"<received xmlns='urn:xmpp:receipts' id='{stanza_id}'/>"
            "<delay xmlns='urn:xmpp:delay' from='sandbox.invalid' stamp='2026-01-01T12:00:05Z'/></message>"
        )
        client.post("/adapter/events/provider", json={"raw": raw}, headers=auth())
        seen = evidence(client, message_id)
        assert seen["notification.endpoint.accepted"] == "undef.identity_uncertain", (
            "a bridged receipt is kept, but no server vouched for its sender"
        )


def test_standalone_send_needs_no_coordination_envelope(
    client: TestClient, contract: OpenApiContract
) -> None:
    body = {
        "idempotency_key": "standalone-1",
        "target_endpoint": {"endpoint_type": "bare_jid", "value": "delivered@sandbox.invalid"},
        "content": {"body": "hello"},
    }
    response = client.post("/xmpp/send", json=body, headers=auth())
    contract.check(response, "/xmpp/send", "post")
    assert response.status_code == 202 and response.json()["accepted"] is True
    message_id = response.json()["xmpp_message_id"]
    assert wait_for(lambda: assessment(client, message_id)["subclass"] == "success.delivered_to_client")
    missing = client.post("/xmpp/send", json={"content": {"body": "x"}}, headers=auth())
    assert missing.status_code == 422 and missing.json()["field"] == "idempotency_key"
    muc = client.post("/xmpp/muc/ops@conference.sandbox.invalid/send", json={}, headers=auth())
    contract.check(muc, "/xmpp/muc/{room}/send", "post")
    assert muc.status_code == 422
    assert {"idempotency_key", "content"} <= {e["field"] for e in muc.json()["errors"]}


def test_every_outage_of_a_stream_is_evidence_on_the_feed(tmp_path: Path) -> None:
    """Two separate drops of the same account's stream are two pieces of evidence, not one repeated: the
    feed tells the engine about the second outage too (events without a stanza are told apart by time)."""
    config = service_config(tmp_path)
    assert config.storage.path is not None
    service = AdapterService(config, SqliteStore(config.storage.path), default_policy())
    with TestClient(build_app(service), raise_server_exceptions=False) as client:
        first = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
        for when in (first, first + timedelta(minutes=5)):
            service.on_native_event(NativeEvent(kind="stream_disconnected", account="sandbox-a",
                                                observed_at=when, detail={"will_retry": True}))
            service.on_native_event(NativeEvent(kind="stream_connected", account="sandbox-a",
                                                observed_at=when + timedelta(seconds=1)))
        events = client.get("/adapter/events", headers=auth()).json()["events"]
        drops = [e for e in events if e["event_type"] == "system.provider.degraded"
                 or e["event_type"] == "system.provider.unavailable"]
        assert len(drops) == 2, [e["event_type"] for e in events]
