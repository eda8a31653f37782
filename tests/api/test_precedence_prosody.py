"""The two precedence defects of issue 12, end to end against a real Prosody with real slixmpp recipients:
a receipt timeout must not hide a temporary stanza error (§13.1, §24), and chat states must not lift a
message to success (§7.6, §15). Each asserts the message's assessment as a coordination engine reads it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from prosody import ProsodyServer
from recipients import Behaviour, Recipient
from test_e2e_prosody import CONFIG, Adapter, send, start_service, stop_service

pytestmark = pytest.mark.prosody
WAIT = 15.0
RECEIPT_TIMEOUT_S = 1.5
STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"
TIMEOUT_SUBCLASSES = frozenset({
    "undef.receipt_requested_no_response", "undef.presence_available_but_no_receipt",
    "undef.offline_delivery_unknown", "undef.no_receipt_requested",
})


@pytest.fixture
async def adapter(prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[Adapter]:
    """The service on a fresh account, with a short receipt timeout so the timeout falls due in the test."""
    user = prosody.fresh_user("prec")
    config_path = tmp_path / "xmpp-connect.yaml"
    repo = Path(__file__).resolve().parents[2]
    text = CONFIG.format(policy_dir=repo, jid=user.jid, port=prosody.port, ca=prosody.cert_path)
    assert "receipt_timeout_s: 30" in text
    config_path.write_text(text.replace("receipt_timeout_s: 30", f"receipt_timeout_s: {RECEIPT_TIMEOUT_S}"))
    service, http = await start_service(config_path, user)
    under_test = Adapter(prosody, user, config_path, service, http)
    under_test.wait = WAIT
    yield under_test
    await stop_service(under_test.service, under_test.http)


@pytest.fixture
async def phone(prosody: ProsodyServer) -> AsyncIterator[Recipient]:
    """An online recipient whose client never returns receipts (so the receipt timeout can fall due)."""
    client = Recipient(prosody, prosody.fresh_user("rcpt"), "phone", Behaviour(auto_receipt=False))
    await client.online()
    yield client
    await client.offline()


async def _entry(adapter: Adapter, message_id: str, matches: Callable[[dict], bool], what: str) -> dict:
    async def scan() -> dict:
        while True:
            for entry in await adapter.entries(message_id):
                if matches(entry):
                    return entry
            await asyncio.sleep(0.02)

    try:
        return await asyncio.wait_for(scan(), WAIT)
    except TimeoutError:
        seen = [(e["event_type"], e["assessment"]["subclass"]) for e in await adapter.entries(message_id)]
        raise AssertionError(f"no {what} in {seen}") from None


@pytest.mark.parametrize(("condition", "subclass"), [
    ("resource-constraint", "undef.deferred"),
    ("remote-server-timeout", "undef.deferred"),
    ("unexpected-request", "undef.deferred"),
    ("recipient-unavailable", "undef.presence_unavailable"),
])
async def test_a_receipt_timeout_does_not_hide_a_temporary_error(
        adapter: Adapter, phone: Recipient, condition: str, subclass: str) -> None:
    result = await adapter.act(send(uuid.uuid4().hex[:8], phone.user.jid))
    message_id = result["xmpp_message_id"]
    delivered = await phone.next_message(WAIT)
    phone.client.send_raw(
        f"<message xmlns='jabber:client' type='error' to='{adapter.user.jid}/adapter' id='{delivered['id']}'>"
        f"<error type='wait'><{condition} xmlns='{STANZAS_NS}'/></error></message>"
    )
    bounced = await _entry(adapter, message_id, lambda e: e["assessment"]["subclass"] == subclass,
                           f"{condition} bounce")
    assert bounced["assessment"]["category"] == "undef"
    await _entry(adapter, message_id, lambda e: e["assessment"]["subclass"] in TIMEOUT_SUBCLASSES,
                 "receipt timeout")
    assessment = await adapter.assessment(message_id)
    assert (assessment["category"], assessment["subclass"]) == ("undef", subclass), (
        "the temporary bounce (may be retried) stays the message's assessment after the receipt timeout"
    )


async def test_chat_states_do_not_lift_a_message_to_success(adapter: Adapter, phone: Recipient) -> None:
    result = await adapter.act(send(uuid.uuid4().hex[:8], phone.user.jid))
    message_id = result["xmpp_message_id"]
    await phone.next_message(WAIT)
    await adapter.wait_for_event(message_id, "notification.attempt.accepted_by_provider",
                                 "undef.server_acknowledged_only")
    for state in ("composing", "active"):
        phone.send_chat_state(f"{adapter.user.jid}/adapter", state)
    def chat_state(entry: dict) -> bool:
        return bool(entry["assessment"]["subclass"] == "success.presence_observed")

    weak = await _entry(adapter, message_id, chat_state, "chat state entry")
    assert weak["assessment"]["confidence"] == "low"
    assessment = await adapter.assessment(message_id)
    assert assessment["category"] == "undef", assessment
    assert assessment["strongest_signal"] != "success.presence_observed", assessment
