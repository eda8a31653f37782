"""§12.1 pre-send refusals answer accepted: false with the assessment and emit the normalized event."""

from __future__ import annotations

import pytest
from api_helpers import OpenApiContract, auth, send_request
from starlette.testclient import TestClient

from xmpp_connect.sending.outbox import DeliveryPolicy


def feed_types(client: TestClient, message_id: str) -> list[str]:
    events = client.get("/adapter/events", params={"limit": 500}, headers=auth()).json()["events"]
    return [e["event_type"] for e in events if e["xmpp_message_id"] == message_id]


REJECTED = ["notification.attempt.rejected_by_adapter"]


@pytest.mark.parametrize(
    ("request_patch", "reason", "subclass", "events"),
    [
        (
            {"target_endpoint": {"endpoint_type": "bare_jid", "value": ""}},
            "missing_jid",
            "fail.missing_jid",
            REJECTED,
        ),
        ({"target_endpoint": {"endpoint_type": "bare_jid"}}, "missing_jid", "fail.missing_jid", REJECTED),
        (
            {"target_endpoint": {"endpoint_type": "bare_jid", "value": "a b@@x"}},
            "invalid_jid",
            "fail.invalid_jid",
            REJECTED,
        ),
        (
            {"content": None, "template_ref": "secure-document-xmpp-notification", "variables": {}},
            "render_failed",
            "fail.stanza_error",
            REJECTED,
        ),
        # §12.1: a missing account is an action error, not a normalized event.
        ({"account": "sandbox-b"}, "account_missing", "fail.authentication_failed", []),
    ],
)
def test_pre_send_refusal(
    client: TestClient,
    contract: OpenApiContract,
    request_patch: dict,
    reason: str,
    subclass: str,
    events: list[str],
) -> None:
    request = {
        k: v
        for k, v in {**send_request(f"r-{reason}-{len(str(request_patch))}"), **request_patch}.items()
        if v is not None
    }
    response = client.post("/adapter/actions", json=request, headers=auth())
    contract.check(response, "/adapter/actions", "post")
    result = response.json()
    assert response.status_code == 200
    assert (result["accepted"], result["action_state"], result["reason"]) == (False, "rejected", reason)
    assert result["assessment"]["subclass"] == subclass and result["assessment"]["category"] == "fail"
    assert [e["event_type"] for e in result["initial_events"]] == events
    assert feed_types(client, result["xmpp_message_id"]) == events
    assessment = client.get(
        f"/adapter/messages/{result['xmpp_message_id']}/assessment", headers=auth()
    ).json()
    assert assessment["subclass"] == subclass


def test_suppressed_recipient_is_refused_until_unsuppressed(client: TestClient) -> None:
    target = {"endpoint_type": "bare_jid", "value": "delivered@sandbox.invalid"}
    suppress = {
        "request_id": "s1",
        "action_type": "recipient.suppress",
        "idempotency_key": "sup-1",
        "target_endpoint": target,
        "reason": "asked to stop",
    }
    done = client.post("/adapter/actions", json=suppress, headers=auth())
    assert done.status_code == 200 and done.json()["action_state"] == "completed"
    refused = client.post("/adapter/actions", json=send_request("sup-send"), headers=auth()).json()
    assert refused["reason"] == "suppressed" and refused["assessment"]["subclass"] == "fail.suppressed"
    other_tenant = client.post("/adapter/actions", json=send_request("sup-send"), headers=auth("b")).json()
    assert other_tenant["accepted"] is True, "suppression is per tenant"
    unsuppress = {**suppress, "action_type": "recipient.unsuppress", "idempotency_key": "unsup-1"}
    assert client.post("/adapter/actions", json=unsuppress, headers=auth()).json()["accepted"] is True
    assert client.post("/adapter/actions", json=send_request("sup-send-2"), headers=auth()).json()["accepted"]


def test_stream_unavailable_is_refused_with_the_provider_event(client: TestClient) -> None:
    """An account configured ``while_disconnected: refuse`` (the default holds: tests/api/test_outbox.py)."""
    service = client.app.state.service
    service.outbox.policies = {"sandbox-a": DeliveryPolicy(while_disconnected="refuse")}
    provider = service.providers["sandbox-a"]
    client.portal.call(provider.stop)
    result = client.post("/adapter/actions", json=send_request("down"), headers=auth()).json()
    assert result["reason"] == "stream_unavailable"
    assert [e["event_type"] for e in result["initial_events"]] == ["system.provider.unavailable"]
    health = client.get("/adapter/health", headers=auth()).json()
    assert health["status"] == "failing" and health["accounts"][0]["stream_status"] == "disconnected"
