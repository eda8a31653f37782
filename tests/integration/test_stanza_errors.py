"""Stanza errors from a real Prosody, each correlated to the stanza that caused it (§24)."""

from __future__ import annotations

from collections.abc import Callable

from adapter import AdapterUnderTest, befriend, explain, of_kind, sender_of, subclass
from prosody import TestUser
from recipients import Recipient


async def test_unknown_local_user(adapter: AdapterUnderTest) -> None:
    sent = adapter.send("nobody-here@localhost")
    error = await adapter.wait_for(of_kind("stanza_error", sent.stanza_id))
    assert (error.fact["error_type"], error.fact["error_condition"]) == ("cancel", "service_unavailable")
    assert error.classification.scenario == "stanza_error.service_unavailable", explain(error)
    assert subclass(error) == "fail.stanza_error"


async def test_recipient_blocked_the_sender(
    adapter: AdapterUnderTest, recipient_user: TestUser, recipient: Callable[..., Recipient]
) -> None:
    phone = await recipient(recipient_user).online()
    await befriend(adapter, phone)
    await phone.block(adapter.user.jid)
    sent = adapter.send(recipient_user.jid)
    error = await adapter.wait_for(of_kind("stanza_error", sent.stanza_id))
    # Prosody answers exactly as for a missing account; what tells them apart is the subscription we had.
    assert (error.fact["error_type"], error.fact["error_condition"]) == ("cancel", "service_unavailable")
    assert error.fact["error_blocked"] is False
    assert error.fact["subscription"] == "both"
    assert subclass(error) == "fail.recipient_blocked", explain(error)
    assert adapter.about(sent.stanza_id, "receipt") == []


async def test_sender_side_block(
    adapter: AdapterUnderTest, sender_user: TestUser, recipient_user: TestUser,
    recipient: Callable[..., Recipient],
) -> None:
    await recipient(recipient_user).online()
    console = await recipient(sender_user, "console").online(presence=False)
    await console.block(recipient_user.jid)
    sent = adapter.send(recipient_user.jid)
    error = await adapter.wait_for(of_kind("stanza_error", sent.stanza_id))
    assert (error.fact["error_type"], error.fact["error_condition"]) == ("cancel", "not_acceptable")
    assert error.fact["error_blocked"] is True
    assert error.classification.scenario == "blocked_by_own_blocklist", explain(error)
    assert subclass(error) == "fail.suppressed"


async def test_malformed_jid_sent_raw_is_correlated_through_its_raw_from(adapter: AdapterUnderTest) -> None:
    bad = "bad@@localhost"
    stanza = (f"<message xmlns='jabber:client' to='{bad}' type='chat' id='raw-malformed-1'>"
              "<body>hello</body></message>")
    sent = adapter.provider.send_raw_message(stanza, "raw-malformed-1", bad)
    error = await adapter.wait_for(of_kind("stanza_error", sent.stanza_id))
    assert sender_of(error) == bad
    assert (error.fact["error_type"], error.fact["error_condition"]) == ("modify", "jid_malformed")
    assert subclass(error) == "fail.invalid_jid", explain(error)


async def test_unknown_remote_domain_with_s2s_disabled(adapter: AdapterUnderTest) -> None:
    sent = adapter.send("someone@remote-domain.invalid")
    error = await adapter.wait_for(of_kind("stanza_error", sent.stanza_id), timeout=5.0)
    # With s2s disabled Prosody refuses at once; with s2s it would be remote-server-not-found after DNS.
    assert (error.fact["error_type"], error.fact["error_condition"]) == ("cancel", "not_allowed")
    assert error.classification.scenario == "stanza_error.not_allowed", explain(error)
    assert subclass(error) == "fail.policy_rejected"
