"""§30 raw event preservation: every evidence entry observed from a stanza names the raw stanza it came from,
kept redacted by default (no body), with the source the evidence implies."""

from __future__ import annotations

from api_helpers import auth, send_request, wait_for
from starlette.testclient import TestClient

from xmpp_connect.store.sql import SqlStore


def test_reply_evidence_points_at_its_redacted_raw_stanza(client: TestClient) -> None:
    store: SqlStore = client.app.state.service.store  # type: ignore[attr-defined]
    response = client.post("/adapter/actions", json=send_request("raw-1", "replies-ack@sandbox.invalid"),
                           headers=auth())
    message_id = response.json()["xmpp_message_id"]

    def entries() -> list[dict]:
        timeline = client.get(f"/adapter/messages/{message_id}/timeline", headers=auth()).json()
        return timeline["entries"]

    reply = wait_for(lambda: next((e for e in entries() if e["scenario"].startswith("ack")), None))
    accepted = next(e for e in entries() if e["event_type"] == "notification.attempt.accepted_by_adapter")
    assert accepted["raw_event_ref"] is None, "the adapter's own acceptance has no stanza behind it"
    found = store.get_raw("a", reply["raw_event_ref"])
    assert found is not None
    ref, content = found
    assert ref.source == "client" and ref.redacted is True
    assert content is not None and "ACK" not in content and "<body" not in content
    receipt = next(e for e in entries() if e["scenario"] == "delivered_to_client")
    assert receipt["raw_event_ref"] not in (None, reply["raw_event_ref"]), "each stanza its own reference"
    assert store.get_raw("b", reply["raw_event_ref"]) is None, "another tenant cannot read it"
