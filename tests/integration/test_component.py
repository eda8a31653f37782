"""§37 component mode against a real Prosody (XEP-0114): the same evidence pipeline, and what a component
cannot observe (no roster presence, no stream-management acks)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from adapter import explain, subclass
from prosody import COMPONENT_DOMAIN, ProsodyServer, TestUser
from recipients import Recipient

from xmpp_connect.config.settings import AccountConfig, Secret
from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.observation import Observation
from xmpp_connect.evidence.pipeline import EvidencePipeline
from xmpp_connect.facts.outbound_index import InMemoryOutboundIndex
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.providers.base import Backoff, Feature, SessionTuning
from xmpp_connect.providers.component import ComponentProvider
from xmpp_connect.providers.stanza_builders import OutboundMessage

WAIT = 30.0


def component_account(secret: str, port: int) -> AccountConfig:
    """The component account as the service configures it (``provider: component``)."""
    return AccountConfig(ref="component", provider="component", jid=COMPONENT_DOMAIN, secret=Secret(secret),
                         port=port)


async def _first(observations: list[Observation], kind: str, stanza_id: str) -> Observation:
    async def scan() -> Observation:
        while True:
            for observation in observations:
                if observation.fact["kind"] == kind and observation.outbound is not None \
                        and observation.outbound.stanza_id == stanza_id:
                    return observation
            await asyncio.sleep(0.01)
    return await asyncio.wait_for(scan(), WAIT)


async def test_component_session_sends_and_receives_through_the_pipeline(
    live_prosody: ProsodyServer, recipient_user: TestUser, recipient: Callable[..., Recipient],
    classifier: Classifier, commands: CommandTable,
) -> None:
    observations: list[Observation] = []
    events: list[NativeEvent] = []
    pipeline = EvidencePipeline(classifier, commands, InMemoryOutboundIndex(), observations.append)

    def sink(event: NativeEvent) -> None:
        events.append(event)
        pipeline.handle(event)

    config = component_account(live_prosody.component_secret, live_prosody.component_port)
    component = ComponentProvider(config, sink)
    assert Feature.STREAM_MANAGEMENT not in component.supported_features
    assert Feature.CLIENT_TO_SERVER not in component.supported_features
    assert await component.start(timeout=WAIT)
    try:
        phone = await recipient(recipient_user).online()
        sent = component.send_message(OutboundMessage(to_jid=recipient_user.jid, body="Build 42 failed."))
        written = await _first(observations, "send_accepted", sent.stanza_id)
        assert written.fact["via_component"] is True
        assert subclass(written) == "undef.sent_to_server_only", explain(written)

        receipt = await _first(observations, "receipt", sent.stanza_id)
        assert receipt.fact["via_component"] is True and receipt.fact["sender_is_addressee"] is True
        assert subclass(receipt) == "success.delivered_to_client", explain(receipt)

        phone.reply(f"{COMPONENT_DOMAIN}", "ACK", reply_to_id=sent.stanza_id)
        ack = await _first(observations, "inbound_message", sent.stanza_id)
        assert ack.fact["command"] == "acknowledgement" and ack.fact["reply_via"] == "reply_reference"
        assert ack.fact["sender_resource_known"] is True, "the resource sent the receipt just before"
        assert subclass(ack) == "success.acknowledged_by_client", explain(ack)

        assert not any(o.fact["kind"] == "sm_ack" for o in observations), "a component stream has no acks"
        assert not any(o.fact["kind"] == "presence" for o in observations), "nobody's roster holds it"
        assert component.health().status == "healthy"
    finally:
        await component.stop()


async def test_component_with_a_wrong_secret_fails_authentication(
    live_prosody: ProsodyServer, classifier: Classifier, commands: CommandTable,
) -> None:
    observations: list[Observation] = []
    pipeline = EvidencePipeline(classifier, commands, InMemoryOutboundIndex(), observations.append)
    config = component_account("wrong-secret", live_prosody.component_port)
    component = ComponentProvider(config, pipeline.handle)
    try:
        assert await component.start(timeout=WAIT) is False
        failed = next(o for o in observations if o.fact["kind"] == "auth_failed")
        assert subclass(failed) == "fail.authentication_failed", explain(failed)
        assert component.health().status == "failing"
    finally:
        await component.stop()


async def test_a_refused_second_component_reports_one_outage_however_often_it_retries(
    live_prosody: ProsodyServer, classifier: Classifier, commands: CommandTable,
) -> None:
    """Prosody closes a second connection for a connected component with a ``conflict`` stream error; each
    retry is refused again. That is one outage (one stream-down fact), until the first component leaves."""
    config = component_account(live_prosody.component_secret, live_prosody.component_port)
    first = ComponentProvider(config, lambda _event: None)
    events: list[NativeEvent] = []
    quick = SessionTuning(backoff=Backoff(initial=0.1, maximum=0.2))
    second = ComponentProvider(config, events.append, quick)
    assert await first.start(timeout=WAIT)
    try:
        assert await second.start(timeout=2.0) is False

        await asyncio.wait_for(_until(lambda: second.failures_while_down >= 2), WAIT)
        down = [e for e in events if e.kind in ("stream_error", "stream_disconnected")]
        assert [e.detail.get("condition") for e in down] == ["conflict"], [e.kind for e in down]
        assert down[0].detail["will_retry"] is True
        await first.stop()
        await asyncio.wait_for(_until(lambda: any(e.kind == "stream_connected" for e in events)), WAIT)
        assert [e for e in events if e.kind in ("stream_error", "stream_disconnected")] == down
    finally:
        await second.stop()
        await first.stop()


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.05)
