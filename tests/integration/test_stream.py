"""Stream-level evidence against a real Prosody: per-stanza SM acks, restart mid-stream, auth/TLS health."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from adapter import AdapterUnderTest, client_account, explain, of_kind, subclass
from prosody import ProsodyServer, TestUser
from recipients import Recipient
from relay import LoopbackRelay

from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.observation import Observation
from xmpp_connect.evidence.pipeline import EvidencePipeline
from xmpp_connect.facts.outbound_index import InMemoryOutboundIndex
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.providers.accounts import AccountProviders
from xmpp_connect.providers.stanza_builders import OutboundMessage


async def test_each_stanza_gets_its_own_sm_ack(adapter: AdapterUnderTest, recipient_user: TestUser) -> None:
    sent = [adapter.send(recipient_user.jid, body=f"message {n}") for n in range(7)]
    for record in sent:
        acked = await adapter.wait_for(of_kind("sm_ack", record.stanza_id))
        assert subclass(acked) == "undef.server_acknowledged_only", explain(acked)
        assert "notification.attempt.accepted_by_provider" in acked.classification.events
    acks = [o.outbound.stanza_id for o in adapter.observations if o.fact["kind"] == "sm_ack" and o.outbound]
    assert acks == [record.stanza_id for record in sent], "one ack per stanza, in send order"
    assert not adapter.provider.acceptance_unknown


async def test_server_killed_mid_stream_then_back(
    live_prosody: ProsodyServer, adapter: AdapterUnderTest, recipient_user: TestUser,
    recipient: Callable[..., Recipient],
) -> None:
    phone = await recipient(recipient_user).online()
    before = adapter.send(recipient_user.jid, body="before")
    await adapter.wait_for(of_kind("receipt", before.stanza_id))
    await adapter.wait_for(of_kind("sm_ack", before.stanza_id))

    live_prosody.freeze()
    in_flight = adapter.send(recipient_user.jid, body="written to a hung server")
    await adapter.wait_event(lambda e: e.kind == "message_sent" and e.stanza_id == in_flight.stanza_id)
    live_prosody.kill()
    down = await adapter.wait_for(of_kind("stream_disconnected"))
    assert down.fact["will_retry"] is True
    assert down.classification.scenario == "stream_down_retrying", explain(down)
    assert "system.provider.unavailable" in down.classification.events
    assert adapter.provider.health().status == "degraded"
    while_down = adapter.send(recipient_user.jid, body="queued while the server is down")

    live_prosody.start()
    unknown = await adapter.wait_for(of_kind("acceptance_unknown", in_flight.stanza_id), timeout=10)
    assert subclass(unknown) == "undef.channel_degraded", explain(unknown)
    assert "system.provider.degraded" in unknown.classification.events
    await adapter.wait_event(lambda _e: sum(e.kind == "stream_connected" for e in adapter.events) == 2,
                             timeout=10)
    assert adapter.provider.health().status == "healthy"
    assert adapter.provider.acceptance_unknown == {in_flight.stanza_id}

    acked = await adapter.wait_for(of_kind("sm_ack", while_down.stanza_id))
    assert "notification.attempt.accepted_by_provider" in acked.classification.events, explain(acked)
    await phone.offline()
    again = await recipient(recipient_user, "phone-after-restart").online()
    delivered = await again.next_message()
    assert delivered["id"] == while_down.stanza_id, "nothing queued while down is lost"
    assert adapter.about(before.stanza_id, "acceptance_unknown") == [], "acked stanzas stay acked"


async def test_wrong_password_is_authentication_failure(
    live_prosody: ProsodyServer, sender_user: TestUser, classifier: Classifier, commands: CommandTable
) -> None:
    impostor = TestUser(sender_user.username, "not-the-password")
    adapter = AdapterUnderTest(live_prosody, impostor, classifier, commands)
    assert await adapter.start() is False
    failed = await adapter.wait_for(of_kind("auth_failed"))
    assert subclass(failed) == "fail.authentication_failed", explain(failed)
    assert adapter.provider.health().authentication_status == "failed"
    assert adapter.provider.health().status == "failing"
    refused = adapter.send("someone@localhost")
    not_sent = await adapter.wait_for(of_kind("request_rejected", refused.stanza_id))
    assert not_sent.fact["reject_reason"] == "stream_unavailable"
    assert subclass(not_sent) == "fail.stream_unavailable", explain(not_sent)
    await adapter.stop()
    assert not any(e.kind == "stream_connected" for e in adapter.events)


async def test_untrusted_certificate_is_tls_failure(
    live_prosody: ProsodyServer, sender_user: TestUser, classifier: Classifier, commands: CommandTable
) -> None:
    adapter = AdapterUnderTest(live_prosody, sender_user, classifier, commands, ca_certs=None)
    assert await adapter.start() is False
    failed = await adapter.wait_for(of_kind("tls_failed"))
    assert subclass(failed) == "fail.stream_unavailable", explain(failed)
    assert adapter.provider.health().tls_status == "failed"
    await adapter.stop()
    assert not any(e.kind == "authenticated" for e in adapter.events), "no login over an unverified stream"


async def test_verification_turned_off_is_explicit_and_reported(
    live_prosody: ProsodyServer, sender_user: TestUser, classifier: Classifier, commands: CommandTable
) -> None:
    adapter = AdapterUnderTest(live_prosody, sender_user, classifier, commands, ca_certs=None,
                               verify_tls=False)
    assert await adapter.start()
    try:
        health = adapter.provider.health()
        assert health.tls_status == "active"
        assert "tls_verification_disabled" in health.known_degradations
        assert health.status == "degraded"
        connected = next(e for e in adapter.events if e.kind == "stream_connected")
        assert connected.detail["tls_verified"] is False
    finally:
        await adapter.stop()


async def test_several_accounts_share_one_loop_and_one_pipeline(
    live_prosody: ProsodyServer, classifier: Classifier, commands: CommandTable, recipient_user: TestUser,
    recipient: Callable[..., Recipient],
) -> None:
    await recipient(recipient_user).online()
    observations: list[Observation] = []
    pipeline = EvidencePipeline(classifier, commands, InMemoryOutboundIndex(), observations.append)
    settings = [
        client_account(purpose, user, host="127.0.0.1", port=live_prosody.port,
                       ca_certs=str(live_prosody.cert_path))[0]
        for purpose, user in (("transactional", live_prosody.fresh_user("tx")),
                              ("incident_alert", live_prosody.fresh_user("alert")))
    ]
    accounts = AccountProviders(settings, pipeline.handle)
    assert await asyncio.wait_for(accounts.start(), 10) == {"transactional": True, "incident_alert": True}
    try:
        sent = {account: accounts[account].send_message(OutboundMessage(recipient_user.jid, "hello"))
                for account in accounts.accounts}

        async def receipts_in() -> None:
            while {o.event.account for o in observations if o.fact["kind"] == "receipt"} != set(sent):
                await asyncio.sleep(0.02)

        await asyncio.wait_for(receipts_in(), 5)
        for observation in (o for o in observations if o.fact["kind"] == "receipt"):
            assert observation.outbound == sent[observation.event.account], "evidence stays with its account"
            assert subclass(observation) == "success.delivered_to_client", explain(observation)
        assert {h.status for h in accounts.health().values()} == {"healthy"}
    finally:
        await asyncio.wait_for(accounts.stop(), 10)


async def test_hung_server_is_detected_by_ping_and_reconnected(
    live_prosody: ProsodyServer, sender_user: TestUser, classifier: Classifier, commands: CommandTable
) -> None:
    adapter = AdapterUnderTest(live_prosody, sender_user, classifier, commands, ping_interval=0.2,
                               ping_timeout=0.5)
    assert await adapter.start()
    try:
        live_prosody.freeze()
        hung = await adapter.wait_for(of_kind("stream_error"), timeout=5)
        assert hung.event.detail["condition"] == "ping-timeout"
        assert hung.classification.scenario == "stream_down_retrying", explain(hung)
        live_prosody.kill()
        live_prosody.start()
        await adapter.wait_event(lambda _e: sum(e.kind == "stream_connected" for e in adapter.events) == 2,
                                 timeout=10)
        assert adapter.provider.health().status == "healthy"
    finally:
        if not live_prosody.running:
            live_prosody.start()
        await adapter.stop()


async def test_network_drop_resumes_the_stream_and_nothing_is_lost(
    live_prosody: ProsodyServer, sender_user: TestUser, recipient_user: TestUser, classifier: Classifier,
    commands: CommandTable, recipient: Callable[..., Recipient],
) -> None:
    relay = await LoopbackRelay(live_prosody.port).start()
    adapter = AdapterUnderTest(live_prosody, sender_user, classifier, commands, port=relay.port)
    assert await adapter.start()
    try:
        await recipient(recipient_user).online()
        first = adapter.send(recipient_user.jid)
        await adapter.wait_for(of_kind("sm_ack", first.stanza_id))
        relay.cut()
        during = adapter.send(recipient_user.jid, body="sent across the drop")
        resumed = await adapter.wait_event(
            lambda e: e.kind == "stream_connected" and bool(e.detail["resumed"]), timeout=10
        )
        assert resumed.detail["stream_management"] is True
        acked = await adapter.wait_for(of_kind("sm_ack", during.stanza_id))
        assert subclass(acked) == "undef.server_acknowledged_only", explain(acked)
        receipt = await adapter.wait_for(of_kind("receipt", during.stanza_id))
        assert subclass(receipt) == "success.delivered_to_client", explain(receipt)
        assert not adapter.provider.acceptance_unknown, "a resumed stream leaves nothing unknown"
    finally:
        await adapter.stop()
        await relay.stop()
