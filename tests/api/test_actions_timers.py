"""Timers (receipt timeout, expiry, late evidence, restart), scheduling, cancel, reminders, prompts, rooms,
PubSub, the unsupported-extension refusal and retention, over HTTP against the sandbox network."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from api_helpers import OpenApiContract, auth, default_policy, send_request, service_config, wait_for
from starlette.testclient import TestClient

from xmpp_connect.app.server import build_app
from xmpp_connect.app.service import AdapterService
from xmpp_connect.config.settings import RetentionConfig, ServiceConfig
from xmpp_connect.providers.sandbox import SandboxProvider
from xmpp_connect.providers.sandbox_network import Answer, SandboxTiming
from xmpp_connect.store.sqlite import SqliteStore


def live(config: ServiceConfig, store: SqliteStore | None = None) -> tuple[TestClient, AdapterService]:
    assert config.storage.path is not None
    service = AdapterService(config, store or SqliteStore(config.storage.path), default_policy())
    return TestClient(build_app(service), raise_server_exceptions=False), service


def at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def post(client: TestClient, request: dict[str, Any]) -> dict[str, Any]:
    return client.post("/adapter/actions", json=request, headers=auth()).json()


def entries(client: TestClient, message_id: str) -> list[dict[str, Any]]:
    return client.get(f"/adapter/messages/{message_id}/timeline", headers=auth()).json()["entries"]


def subclasses(client: TestClient, message_id: str) -> set[str]:
    return {e["assessment"]["subclass"] for e in entries(client, message_id)}


def assessment(client: TestClient, message_id: str) -> dict[str, Any]:
    return client.get(f"/adapter/messages/{message_id}/assessment", headers=auth()).json()


def attempt_state(client: TestClient, message_id: str) -> str:
    return client.get(f"/xmpp/messages/{message_id}", headers=auth()).json()["attempts"][0]["state"]


def test_missing_receipt_becomes_unresolved_evidence_not_failure(tmp_path: Path) -> None:
    client, _ = live(service_config(tmp_path))
    with client:
        request = send_request("nr1", "no-receipts@sandbox.invalid", options={"receipt_timeout_s": 0.2})
        message_id = post(client, request)["xmpp_message_id"]
        no_receipt = {"undef.presence_available_but_no_receipt", "undef.receipt_requested_no_response"}
        assert wait_for(lambda: subclasses(client, message_id) & no_receipt), subclasses(client, message_id)
        result = assessment(client, message_id)
        assert result["category"] == "undef" and result["subclass"] in no_receipt


def test_receipt_in_time_drops_the_timeout(tmp_path: Path) -> None:
    client, service = live(service_config(tmp_path))
    no_receipt = {"undef.presence_available_but_no_receipt", "undef.receipt_requested_no_response"}
    with client:
        request = send_request("rt1", "delivered@sandbox.invalid", options={"receipt_timeout_s": 0.3})
        message_id = post(client, request)["xmpp_message_id"]
        assert wait_for(lambda: "success.delivered_to_client" in subclasses(client, message_id))
        # A later message's receipt timeout, due after the first one's would have been: once it has
        # fired, the timer loop has passed the first one's due time (timers fire in due order).
        later = send_request("rt1-later", "no-receipts@sandbox.invalid", options={"receipt_timeout_s": 0.3})
        later_id = post(client, later)["xmpp_message_id"]
        assert wait_for(lambda: subclasses(client, later_id) & no_receipt), subclasses(client, later_id)
        assert not subclasses(client, message_id) & no_receipt
        assert service.store.timers_for_message("a", message_id) == []
        assert assessment(client, message_id)["subclass"] == "success.delivered_to_client"


def test_receipt_after_the_timeout_is_kept_and_marked_late(tmp_path: Path) -> None:
    """The simulated phone sends its receipt once the timeout has fired (not after a fixed delay, which a
    loaded machine could let overtake the timeout), on the account's stream like any inbound stanza."""
    client, service = live(service_config(tmp_path))
    provider = service.providers["sandbox-a"]
    assert isinstance(provider, SandboxProvider)
    provider.network.timing = SandboxTiming(late_receipt=3600)
    with client:
        request = send_request("late1", "late-receipt@sandbox.invalid", options={"receipt_timeout_s": 0.2})
        message_id = post(client, request)["xmpp_message_id"]
        no_receipt = {"undef.presence_available_but_no_receipt", "undef.receipt_requested_no_response"}
        assert wait_for(lambda: subclasses(client, message_id) & no_receipt), subclasses(client, message_id)
        stanza_id = client.get(f"/xmpp/messages/{message_id}", headers=auth()).json()["attempts"][0][
            "stanza_id"
        ]
        raw = provider.network.writer.receipt(
            "late-receipt@sandbox.invalid/phone", provider.jid, stanza_id
        )
        client.portal.call(provider._emit, Answer(0, "stanza_received", raw=raw))
        assert wait_for(lambda: "success.delivered_to_client" in subclasses(client, message_id))
        (receipt,) = [
            e
            for e in entries(client, message_id)
            if e["assessment"]["subclass"] == "success.delivered_to_client"
        ]
        assert receipt["late"] is True
        assert (receipt["rule_id"], receipt["scenario"]) == ("receipts.late", "receipt_late"), (
            "the rules saw the receipt as late before classifying it"
        )
        timeout_entries = [e for e in entries(client, message_id) if e["late"] is False]
        assert any("no_receipt" in e["assessment"]["subclass"] for e in timeout_entries)
        assert assessment(client, message_id)["subclass"] == "success.delivered_to_client", (
            "late stronger evidence still counts"
        )


def test_expiry_fails_a_message_the_server_only_accepted(tmp_path: Path) -> None:
    client, _ = live(service_config(tmp_path))
    with client:
        request = send_request("ex1", "no-receipts@sandbox.invalid", expires_at=at(0.3))
        message_id = post(client, request)["xmpp_message_id"]
        assert wait_for(lambda: assessment(client, message_id)["subclass"] == "fail.expired")


def test_a_due_timer_fires_in_a_fresh_service_on_the_same_store(tmp_path: Path) -> None:
    config = service_config(tmp_path)
    client, _ = live(config)
    with client:
        request = send_request("rs1", "no-receipts@sandbox.invalid", options={"receipt_timeout_s": 0.5})
        message_id = post(client, request)["xmpp_message_id"]
        wait_for(lambda: "undef.server_acknowledged_only" in subclasses(client, message_id))
    assert "undef.receipt_requested_no_response" not in subclasses_offline(config, message_id)
    time.sleep(0.6)  # the timer falls due while no service runs (a sleep never ends early)
    again, _ = live(config)
    with again:
        assert wait_for(
            lambda: (
                subclasses(again, message_id) & {"undef.receipt_requested_no_response"}
                or subclasses(again, message_id) & {"undef.presence_available_but_no_receipt"}
            )
        ), subclasses(again, message_id)


def subclasses_offline(config: ServiceConfig, message_id: str) -> set[str]:
    assert config.storage.path is not None
    store = SqliteStore(config.storage.path)
    try:
        return {e.assessment.subclass for e in store.evidence_for_message("a", message_id)}
    finally:
        store.close()


def schedule_request(key: str, to: str, send_at: str) -> dict[str, Any]:
    request = send_request(key, to, send_at=send_at)
    request["action_type"] = "notification.schedule"
    return request


def test_scheduled_message_is_held_then_sent_at_its_time(tmp_path: Path, contract: OpenApiContract) -> None:
    client, _ = live(service_config(tmp_path))
    with client:
        response = client.post(
            "/adapter/actions",
            json=schedule_request("s1", "delivered@sandbox.invalid", at(0.5)),
            headers=auth(),
        )
        contract.check(response, "/adapter/actions", "post")
        result = response.json()
        assert response.status_code == 202 and result["action_state"] == "scheduled"
        message_id = result["xmpp_message_id"]
        assert attempt_state(client, message_id) == "deferred"
        assert "success.delivered_to_client" not in subclasses(client, message_id)
        assert wait_for(lambda: "success.delivered_to_client" in subclasses(client, message_id))


def test_scheduled_message_goes_out_on_time_when_nothing_else_is_due(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timer loop sleeps up to ``max_sleep`` when nothing is due; holding a request must wake it, or the
    send goes out up to that long late. Here the idle loop would sleep an hour: the send goes out only if
    holding it woke the loop (how late it went out depends on the machine's load, not checked)."""
    client, service = live(service_config(tmp_path))
    timers: Any = service.timers
    idle: list[float] = []
    sleep_seconds = timers._sleep_seconds

    def recorded() -> float:
        seconds = sleep_seconds()
        idle.append(seconds)
        return seconds

    monkeypatch.setattr(timers, "_max_sleep", 3600.0)
    monkeypatch.setattr(timers, "_sleep_seconds", recorded)
    with client:
        assert wait_for(lambda: 3600.0 in idle), "the timer loop went to sleep with nothing due"
        send_at = at(0.3)
        message_id = post(client, schedule_request("s-on-time", "delivered@sandbox.invalid", send_at))[
            "xmpp_message_id"
        ]
        sent = wait_for(lambda: next(
            (e for e in entries(client, message_id)
             if e["event_type"] == "notification.attempt.accepted_by_provider"), None))
        assert sent is not None, "holding the request woke the timer loop"
        late = datetime.fromisoformat(sent["occurred_at"]) - datetime.fromisoformat(send_at)
        assert late >= timedelta(0), f"sent {-late} before its time"


def test_scheduled_message_survives_a_restart(tmp_path: Path) -> None:
    config = service_config(tmp_path)
    client, _ = live(config)
    request = schedule_request("s2", "delivered@sandbox.invalid", at(0.6))
    with client:
        result = post(client, request)
        message_id = result["xmpp_message_id"]
    time.sleep(0.7)  # the send falls due while no service runs (a sleep never ends early)
    again, _ = live(config)
    with again:
        assert wait_for(lambda: "success.delivered_to_client" in subclasses(again, message_id))
        replay = post(again, request)
        assert replay["idempotent_replay"] is True
        assert replay["adapter_operation_id"] == result["adapter_operation_id"]


def cancel_request(key: str, operation_id: str) -> dict[str, Any]:
    return {
        "request_id": f"req-{key}",
        "action_type": "notification.cancel",
        "idempotency_key": f"cancel:{key}",
        "operation_id": operation_id,
    }


def test_cancel_only_while_queued(tmp_path: Path, contract: OpenApiContract) -> None:
    client, _ = live(service_config(tmp_path))
    with client:
        queued = post(client, schedule_request("c1", "delivered@sandbox.invalid", at(60)))
        response = client.post(
            "/adapter/actions", json=cancel_request("c1", queued["adapter_operation_id"]), headers=auth()
        )
        contract.check(response, "/adapter/actions", "post")
        assert response.json()["accepted"] is True and response.json()["action_state"] == "completed"
        assert attempt_state(client, queued["xmpp_message_id"]) == "cancelled"
        again = post(client, cancel_request("c1-again", queued["adapter_operation_id"]))
        assert again["accepted"] is False and again["action_state"] == "refused"
        assert again["reason"] == "not_queued:cancelled"
        sent = post(client, send_request("c2", "delivered@sandbox.invalid"))
        too_late = post(client, cancel_request("c2", sent["adapter_operation_id"]))
        assert too_late["accepted"] is False and too_late["reason"].startswith("not_queued:")
        assert too_late["reason"] != "not_queued:deferred", "a sent message's attempt is past deferred"
        unknown = post(client, cancel_request("c3", "xmppop_000000000000000000000000"))
        assert unknown["accepted"] is False and unknown["reason"] == "unknown_operation"


def test_reminder_reuses_the_original_recipient_and_links_to_it(tmp_path: Path) -> None:
    client, _ = live(service_config(tmp_path))
    with client:
        original = post(client, send_request("o1", "delivered@sandbox.invalid"))
        reminder = send_request("o1-reminder", None, original_operation_id=original["adapter_operation_id"])
        reminder["action_type"] = "notification.send_reminder"
        result = post(client, reminder)
        assert result["accepted"] is True
        message_id = result["xmpp_message_id"]
        record = client.get(f"/xmpp/messages/{message_id}", headers=auth()).json()
        assert record["tracking_context"]["reminder_of"] == original["adapter_operation_id"]
        assert record["purpose"] == "notification.send_reminder"
        assert wait_for(lambda: "success.delivered_to_client" in subclasses(client, message_id))
        orphan = dict(reminder, idempotency_key="orphan", original_operation_id="xmppop_nope")
        refused = client.post("/adapter/actions", json=orphan, headers=auth())
        assert refused.status_code == 404 and refused.json()["field"] == "original_operation_id"


def test_acknowledgement_request_and_command_prompt_classify_replies(tmp_path: Path) -> None:
    client, _ = live(service_config(tmp_path))
    with client:
        ack = send_request("ack1", "replies-ack@sandbox.invalid")
        ack["action_type"] = "interaction.request_acknowledgement"
        prompt = send_request("prompt1", "replies-ack@sandbox.invalid", prompt="Incident 42: confirm?")
        prompt.pop("content")
        prompt.update(action_type="interaction.send_command_prompt", expected_keywords=["ACK", "DECLINE"])
        for request in (ack, prompt):
            message_id = post(client, request)["xmpp_message_id"]
            assert wait_for(
                lambda m=message_id: assessment(client, m)["subclass"] == "success.acknowledged_by_client"
            )
            types = {e["event_type"] for e in entries(client, message_id)}
            assert "interaction.acknowledgement_recorded" in types


def publish_request(key: str, node: str) -> dict[str, Any]:
    return {
        "request_id": f"req-{key}",
        "action_type": "feed.publish_item",
        "idempotency_key": key,
        "requested_at": "2026-01-01T12:00:00Z",
        "target_endpoint": {
            "endpoint_type": "pubsub_node",
            "service": "pubsub.sandbox.invalid",
            "value": node,
        },
        "item": {"title": "New coordination event available", "link": "https://portal.example/e/1"},
    }


def test_pubsub_publication_is_feed_evidence_only(tmp_path: Path, contract: OpenApiContract) -> None:
    client, _ = live(service_config(tmp_path))
    with client:
        message_id = post(client, publish_request("p1", "events"))["xmpp_message_id"]
        assert wait_for(lambda: assessment(client, message_id)["subclass"] == "success.pubsub_item_published")
        assert "feed.item.published" in {e["event_type"] for e in entries(client, message_id)}
        missing = post(client, publish_request("p2", "no-such-node"))["xmpp_message_id"]
        assert wait_for(lambda: assessment(client, missing)["subclass"] == "fail.pubsub_node_unavailable")
        for key, node in (("p1", "events"), ("p2", "no-such-node")):
            # In the outbox: settled by the iq answer (result or error), so never published again.
            replay = post(client, publish_request(key, node))
            assert replay["idempotent_replay"] is True and replay["outbox_state"] == "server_acked", replay
        standalone = client.post(
            "/xmpp/pubsub/events/publish",
            json={"idempotency_key": "p3", "item": {"title": "hello"}},
            headers=auth(),
        )
        contract.check(standalone, "/xmpp/pubsub/{node}/publish", "post")
        assert standalone.status_code == 202
        published = standalone.json()["xmpp_message_id"]
        assert wait_for(lambda: assessment(client, published)["subclass"] == "success.pubsub_item_published")


def test_room_message_is_room_level_evidence_only(tmp_path: Path, contract: OpenApiContract) -> None:
    client, _ = live(service_config(tmp_path))
    with client:
        response = client.post(
            "/xmpp/muc/ops@conference.sandbox.invalid/send",
            json={"idempotency_key": "m1", "content": {"body": "New incident case opened."}},
            headers=auth(),
        )
        contract.check(response, "/xmpp/muc/{room}/send", "post")
        assert response.status_code == 202
        message_id = response.json()["xmpp_message_id"]
        room_level = "undef.muc_room_message_participant_uncertain"
        assert wait_for(lambda: assessment(client, message_id)["subclass"] == room_level)
        assert "notification.endpoint.accepted" in {e["event_type"] for e in entries(client, message_id)}
        (attempt,) = client.get(f"/xmpp/messages/{message_id}", headers=auth()).json()["attempts"]
        assert attempt["expected_evidence"] == ["room_reflection"], (
            "a semi-anonymous room without stable ids can promise the reflection only, not occupant markers"
        )
        missing = client.post(
            "/xmpp/muc/nope@conference.sandbox.invalid/send",
            json={"idempotency_key": "m2", "content": {"body": "x"}},
            headers=auth(),
        ).json()["xmpp_message_id"]
        assert wait_for(lambda: assessment(client, missing)["category"] == "fail"), assessment(
            client, missing
        )
        (unjoined,) = client.get(f"/xmpp/messages/{missing}", headers=auth()).json()["attempts"]
        assert unjoined["expected_evidence"] is None, "a room we could not join promises nothing"


def test_mandatory_receipts_refused_when_the_client_is_known_not_to_support_them(tmp_path: Path) -> None:
    client, service = live(service_config(tmp_path))
    with client:
        provider = service.providers["sandbox-a"]
        client.portal.call(provider.discover, "no-receipts@sandbox.invalid/legacy")
        client.portal.call(provider.discover, "delivered@sandbox.invalid/phone")
        strict = {"require_receipts": True}
        refused = post(client, send_request("u1", "no-receipts@sandbox.invalid", options=strict))
        assert refused["accepted"] is False and refused["reason"] == "unsupported_extension"
        assert refused["assessment"]["subclass"] == "fail.policy_rejected"
        assert [e["event_type"] for e in refused["initial_events"]] == [
            "notification.attempt.rejected_by_adapter"
        ]
        fine = post(client, send_request("u2", "delivered@sandbox.invalid", options=strict))
        assert fine["accepted"] is True
        unknown = post(client, send_request("u3", "displayed@sandbox.invalid", options=strict))
        assert unknown["accepted"] is True, "unknown capabilities never refuse"


def test_health_reports_tls_verification_and_retention_purge_runs(tmp_path: Path) -> None:
    config = service_config(tmp_path)
    purges: list[tuple[timedelta | None, timedelta | None]] = []

    class CountingStore(SqliteStore):
        def purge(self, now: datetime, raw_retention: timedelta | None, presence_retention: timedelta | None):
            purges.append((raw_retention, presence_retention))
            return super().purge(now, raw_retention, presence_retention)

    config = replace(config, retention=RetentionConfig(raw_retention_s=60, purge_interval_s=0.05))
    assert config.storage.path is not None
    client, _ = live(config, CountingStore(config.storage.path))
    with client:
        health = client.get("/adapter/health", headers=auth()).json()
        assert [a["tls_verification"] for a in health["accounts"]] == [True]
        assert wait_for(lambda: len(purges) >= 2)
        assert purges[0] == (timedelta(seconds=60), None)
