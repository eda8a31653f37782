"""notification.send through the sandbox: action result, timeline, assessment, event feed (§36, §32.1 4-9)."""

from __future__ import annotations

from api_helpers import OpenApiContract, auth, send_request, wait_for
from starlette.testclient import TestClient


def timeline_types(client: TestClient, message_id: str, tenant: str = "a") -> list[str]:
    response = client.get(f"/adapter/messages/{message_id}/timeline", headers=auth(tenant))
    return [e["event_type"] for e in response.json()["entries"]]


def test_receipt_flow_records_acceptance_separately_from_delivery(
    client: TestClient, contract: OpenApiContract
) -> None:
    response = client.post("/adapter/actions", json=send_request("n1"), headers=auth())
    contract.check(response, "/adapter/actions", "post")
    assert response.status_code == 202
    result = response.json()
    assert result["accepted"] is True and result["action_state"] == "accepted"
    assert result["adapter_operation_id"].startswith("xmppop_") and result["idempotent_replay"] is False
    assert [e["event_type"] for e in result["initial_events"]] == ["notification.attempt.accepted_by_adapter"]
    assert result["assessment"]["subclass"] == "undef.pending"
    message_id = result["xmpp_message_id"]

    types = wait_for(
        lambda: (
            "notification.endpoint.accepted" in timeline_types(client, message_id)
            and timeline_types(client, message_id)
        )
    )
    assert types[0] == "notification.attempt.accepted_by_adapter"
    assert "notification.attempt.accepted_by_provider" in types
    assert types.index("notification.attempt.accepted_by_provider") < types.index(
        "notification.endpoint.accepted"
    )

    timeline = client.get(f"/adapter/messages/{message_id}/timeline", headers=auth())
    contract.check(timeline, "/adapter/messages/{id}/timeline")
    subclasses = {e["scenario"]: e["assessment"]["subclass"] for e in timeline.json()["entries"]}
    assert subclasses["server_acknowledged"] == "undef.server_acknowledged_only"
    assert subclasses["delivered_to_client"] == "success.delivered_to_client"
    assert all(e["coordination_case_id"] == "case_123" for e in timeline.json()["entries"])

    assessment = client.get(f"/adapter/messages/{message_id}/assessment", headers=auth())
    contract.check(assessment, "/adapter/messages/{id}/assessment")
    body = assessment.json()
    assert (body["category"], body["subclass"]) == ("success", "success.delivered_to_client")
    assert body["strongest_signal"] == "success.delivered_to_client"
    assert any("unproven" in note or "not" in note for note in body["evidence_summary"])


def test_event_feed_pages_with_a_cursor(client: TestClient, contract: OpenApiContract) -> None:
    message_id = client.post("/adapter/actions", json=send_request("n2"), headers=auth()).json()[
        "xmpp_message_id"
    ]
    wait_for(lambda: "notification.endpoint.accepted" in timeline_types(client, message_id))
    first = client.get("/adapter/events", params={"limit": 2}, headers=auth())
    contract.check(first, "/adapter/events")
    page = first.json()
    assert len(page["events"]) == 2
    rest = client.get(
        "/adapter/events", params={"cursor": page["next_cursor"], "limit": 500}, headers=auth()
    ).json()
    ids = [e["event_id"] for e in page["events"] + rest["events"]]
    assert len(ids) == len(set(ids))
    assert "notification.endpoint.accepted" in {e["event_type"] for e in rest["events"]}
    again = client.get("/adapter/events", params={"cursor": rest["next_cursor"]}, headers=auth()).json()
    assert again["events"] == [] and again["next_cursor"] == rest["next_cursor"]
    bad = client.get("/adapter/events", params={"cursor": "bogus!"}, headers=auth())
    assert bad.status_code == 400 and bad.json()["field"] == "cursor"


def test_idempotent_resend_returns_the_original_operation_and_sends_nothing(client: TestClient) -> None:
    first = client.post("/adapter/actions", json=send_request("n3"), headers=auth()).json()
    message_id = first["xmpp_message_id"]
    wait_for(lambda: "notification.endpoint.accepted" in timeline_types(client, message_id))
    before = timeline_types(client, message_id)
    replay = client.post(
        "/adapter/actions", json={**send_request("n3"), "request_id": "retry"}, headers=auth()
    )
    assert replay.status_code == 202
    assert replay.json()["adapter_operation_id"] == first["adapter_operation_id"]
    assert replay.json()["idempotent_replay"] is True
    # A later send to the same recipient, through to its receipt: had the replay sent a stanza, the
    # sandbox would have answered it first (answers come in the order of the sends).
    later = client.post("/adapter/actions", json=send_request("n3-later"), headers=auth()).json()
    later_id = later["xmpp_message_id"]
    assert wait_for(lambda: "notification.endpoint.accepted" in timeline_types(client, later_id))
    assert timeline_types(client, message_id) == before

    changed = send_request("n3", content={"body": "something else"})
    conflict = client.post("/adapter/actions", json=changed, headers=auth())
    assert conflict.status_code == 409 and conflict.json()["field"] == "idempotency_key"


def test_no_receipt_stays_unresolved_not_failed(client: TestClient) -> None:
    result = client.post(
        "/adapter/actions", json=send_request("n4", "no-receipts@sandbox.invalid"), headers=auth()
    )
    message_id = result.json()["xmpp_message_id"]
    wait_for(lambda: "notification.attempt.accepted_by_provider" in timeline_types(client, message_id))
    body = client.get(f"/adapter/messages/{message_id}/assessment", headers=auth()).json()
    assert body["category"] == "undef" and body["subclass"] == "undef.server_acknowledged_only"


def test_message_record_lists_the_attempt(client: TestClient, contract: OpenApiContract) -> None:
    message_id = client.post("/adapter/actions", json=send_request("n5"), headers=auth()).json()[
        "xmpp_message_id"
    ]
    response = client.get(f"/xmpp/messages/{message_id}", headers=auth())
    contract.check(response, "/xmpp/messages/{id}")
    (attempt,) = response.json()["attempts"]
    assert attempt["xmpp_account_ref"] == "sandbox-a" and attempt["stanza_id"].startswith("xc-")
    assert "delivered@" not in response.text, "the JID is stored as an endpoint ref, not echoed"
