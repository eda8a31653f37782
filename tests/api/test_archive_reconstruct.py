"""Reconstruct over HTTP against the real Prosody's MAM archive (§7.7, §30): the archived copy of a sent
message is recorded as archive evidence only (reconstructability, never awareness), enters the evidence
chain, and the message's assessment stays what the receipt made it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from api_helpers import OpenApiContract
from prosody import ProsodyServer
from recipients import Recipient
from test_e2e_prosody import WAIT, Adapter, send, start_service, stop_service, write_config

pytestmark = pytest.mark.prosody


@pytest.fixture
async def adapter(prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[Adapter]:
    user = prosody.fresh_user("arch")
    config_path = write_config(tmp_path, prosody, user)
    service, http = await start_service(config_path, user)
    yield Adapter(prosody, user, config_path, service, http)
    await stop_service(service, http)


async def test_an_archived_message_is_reconstructability_only(
    adapter: Adapter, prosody: ProsodyServer
) -> None:
    phone = await Recipient(prosody, prosody.fresh_user("rcpt"), "phone").online()
    try:
        result = await adapter.act(send(uuid.uuid4().hex[:8], phone.user.jid))
        message_id = result["xmpp_message_id"]
        await phone.next_message(WAIT)
        await adapter.wait_for_event(message_id, "notification.endpoint.accepted")
        await _server_ack(adapter, message_id)
        before = await adapter.assessment(message_id)
        events_before = {e["event_type"] for e in await adapter.entries(message_id)}

        response = await adapter.http.post("/adapter/archive/queries", json={"xmpp_message_id": message_id})
        assert response.status_code == 200, response.text
        outcome = response.json()
        OpenApiContract().check(response, "/adapter/archive/queries", "post")
        assert (outcome["complete"], outcome["error_condition"]) == (True, None)
        ours = [e for e in outcome["archive_evidence"] if e["archive_correlated"]]
        assert ours, f"the sent message was not found in the archive: {outcome}"
        for entry in ours:
            assert entry["scenario"] == "archived_only"
            assert entry["xmpp_message_id"] == message_id
            assert entry["assessment"]["category"] == "undef"
            assert entry["event_type"] == "xmpp.evidence_recorded", "no normalized event: never awareness"
        after = await adapter.assessment(message_id)
        verdict = ("category", "subclass", "confidence", "recommended_coordination_interpretation")
        assert {k: after[k] for k in verdict} == {k: before[k] for k in verdict}, "no assessment changes"
        assert after["evidence_count"] == before["evidence_count"] + len(ours)
        feed = {e["event_type"] for e in await adapter.entries(message_id)}
        assert feed - events_before <= {"xmpp.evidence_recorded"}

        again = (
            await adapter.http.post("/adapter/archive/queries", json={"xmpp_message_id": message_id})
        ).json()
        first_ids = [e["event_id"] for e in outcome["archive_evidence"]]
        again_ids = [e["event_id"] for e in again["archive_evidence"]]
        assert set(first_ids) <= set(again_ids), "a repeated query records an archived stanza once"
        assert len(again_ids) == len(set(again_ids))
        report = adapter.service.store.verify_chain("ops")
        assert report.ok and report.entries >= len(events_before) + len(ours)
    finally:
        await phone.offline()


async def test_a_time_range_query_and_bad_queries(adapter: Adapter, prosody: ProsodyServer) -> None:
    phone = await Recipient(prosody, prosody.fresh_user("rcpt"), "phone").online()
    try:
        result = await adapter.act(send(uuid.uuid4().hex[:8], phone.user.jid))
        await adapter.wait_for_event(result["xmpp_message_id"], "notification.endpoint.accepted")
        response = await adapter.http.post(
            "/adapter/archive/queries", json={"since": "2020-01-01T00:00:00+00:00", "with": phone.user.jid}
        )
        assert response.status_code == 200, response.text
        found = response.json()["archive_evidence"]
        assert any(e["xmpp_message_id"] == result["xmpp_message_id"] for e in found)
    finally:
        await phone.offline()
    bad = await adapter.http.post("/adapter/archive/queries", json={"since": "yesterday"})
    assert bad.status_code == 422 and bad.json()["field"] == "since"
    missing = await adapter.http.post("/adapter/archive/queries", json={"xmpp_message_id": "nope"})
    assert missing.status_code == 404
    other = await adapter.http.post(
        "/adapter/archive/queries", json={"since": "2020-01-01T00:00:00Z", "account_ref": "someone-else"}
    )
    assert other.status_code == 404 and other.json()["field"] == "account_ref"


async def _server_ack(adapter: Adapter, message_id: str) -> None:
    """The server's XEP-0198 ack may come after the receipt: counting evidence before it would count it as
    the archive's."""
    async def scan() -> None:
        while True:
            scenarios = [e["scenario"] for e in await adapter.entries(message_id)]
            if any(s.startswith("server_acknowledged") for s in scenarios):
                return
            await asyncio.sleep(0.02)
    await asyncio.wait_for(scan(), WAIT)
