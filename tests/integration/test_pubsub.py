"""§12.8 and §32.5 against a real Prosody PubSub service: publication, node errors, node models, and
subscriber-side evidence through the adapter's own subscriber account."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from adapter import AdapterUnderTest, explain, of_kind, subclass
from prosody import PUBSUB_DOMAIN, ProsodyServer, TestUser

from xmpp_connect.config.settings import NodeConfig
from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.facts.build import fact_for_event
from xmpp_connect.model.correlation import CorrelationContext
from xmpp_connect.policy.commands import CommandTable

PAYLOAD = "<event xmlns='urn:example:coordination'><case>case_123</case></event>"


@pytest.fixture
def node() -> str:
    return f"events-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def publisher(live_prosody: ProsodyServer, classifier: Classifier, commands: CommandTable,
                    node: str) -> AsyncIterator[AdapterUnderTest]:
    """The adapter on the admin account (Prosody lets only admins create nodes), creating ``node``."""
    settings = NodeConfig(PUBSUB_DOMAIN, node, create=True, access_model="open",
                            publisher_model="publishers")
    under_test = AdapterUnderTest(live_prosody, live_prosody.admin_user(), classifier, commands,
                                  account="feed", nodes=(settings,))
    assert await under_test.start()
    yield under_test
    await under_test.stop()


async def test_publication_then_subscriber_evidence(
    publisher: AdapterUnderTest, live_prosody: ProsodyServer, classifier: Classifier, node: str,
) -> None:
    info = await publisher.provider.node_info(PUBSUB_DOMAIN, node)
    assert (info.exists, info.access_model, info.publisher_model) == (True, "open", "publishers")
    monitor = await publisher.add_account(live_prosody.fresh_user("monitor"), "monitor",
                                          nodes=(NodeConfig(PUBSUB_DOMAIN, node, subscribe=True),))

    item_id = f"corr-{uuid.uuid4().hex[:8]}"
    sent = publisher.provider.publish(PUBSUB_DOMAIN, node, item_id, PAYLOAD, message_id="msg-1")
    written = await publisher.wait_for(of_kind("send_accepted", sent.stanza_id))
    assert subclass(written) == "undef.sent_to_server_only", explain(written)
    published = await publisher.wait_for(of_kind("pubsub_published", sent.stanza_id))
    assert published.classification.scenario == "pubsub_published", explain(published)
    assert subclass(published) == "success.pubsub_item_published"
    assert published.classification.events == ("feed.item.published",)
    assert published.outbound is not None and published.outbound.message_id == "msg-1"

    notified = await publisher.wait_for(of_kind("pubsub_notification", sent.stanza_id))
    assert notified.event.account == "monitor"
    assert notified.classification.scenario == "pubsub_subscriber_notified", explain(notified)
    assert notified.classification.assessment.confidence == "medium"
    assert notified.classification.events == ("notification.endpoint.accepted",)

    await monitor.fetch_items(PUBSUB_DOMAIN, node, (item_id,))
    fetched = await publisher.wait_for(of_kind("pubsub_items_fetched", sent.stanza_id))
    assert fetched.classification.scenario == "pubsub_item_fetched", explain(fetched)
    assert fetched.classification.events == ("feed.item.fetched",)


async def test_publication_alone_stays_publication_only(
    publisher: AdapterUnderTest, classifier: Classifier, node: str,
) -> None:
    sent = publisher.provider.publish(PUBSUB_DOMAIN, node, f"corr-{uuid.uuid4().hex[:8]}", PAYLOAD)
    await publisher.wait_for(of_kind("pubsub_published", sent.stanza_id))
    assert publisher.about(sent.stanza_id, "pubsub_notification") == [], "nobody subscribed"
    expiry = classifier.classify(fact_for_event("timer", CorrelationContext(outbound=sent), timer="expiry"))
    assert expiry.scenario == "pubsub_publication_only"
    assert expiry.assessment.subclass == "undef.pubsub_publication_only"


async def test_publish_to_a_missing_node_is_node_unavailable(
    publisher: AdapterUnderTest, adapter: AdapterUnderTest,
) -> None:
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    sent = publisher.provider.publish(PUBSUB_DOMAIN, missing, "i-1", PAYLOAD)
    error = await publisher.wait_for(of_kind("stanza_error", sent.stanza_id))
    assert error.fact["error_condition"] == "item_not_found"
    assert error.classification.scenario == "pubsub_node_unavailable", explain(error)
    assert subclass(error) == "fail.pubsub_node_unavailable"

    # To an account that may not create nodes, Prosody answers a missing node with forbidden.
    refused = adapter.provider.publish(PUBSUB_DOMAIN, missing, "i-2", PAYLOAD)
    forbidden = await adapter.wait_for(of_kind("stanza_error", refused.stanza_id))
    assert forbidden.fact["error_condition"] == "forbidden"
    assert subclass(forbidden) == "fail.authorization_failed", explain(forbidden)


async def test_publisher_without_rights_is_forbidden(
    publisher: AdapterUnderTest, adapter: AdapterUnderTest, node: str,
) -> None:
    created = await adapter.provider.groups.ensure_node(NodeConfig(PUBSUB_DOMAIN, f"{node}-x", create=True))
    assert (created.exists, created.error_condition) == (False, "forbidden"), "only admins create nodes"

    sent = adapter.provider.publish(PUBSUB_DOMAIN, node, "i-1", PAYLOAD)
    error = await adapter.wait_for(of_kind("stanza_error", sent.stanza_id))
    assert error.fact["error_condition"] == "forbidden"
    assert error.classification.scenario == "pubsub_publish_forbidden", explain(error)
    assert subclass(error) == "fail.authorization_failed"


async def test_a_publish_waiting_for_a_session_that_will_never_come_is_reported_not_sent(
    live_prosody: ProsodyServer, adapter: AdapterUnderTest, sender_user: TestUser, node: str,
) -> None:
    """The account is deleted while the server is down: the reconnect is refused for good, so the publish that
    waited for the next session is never written, and says so (the outbox ends it ``not_sent``)."""
    live_prosody.kill()
    await adapter.wait_for(of_kind("stream_disconnected"))
    waiting = adapter.provider.publish(PUBSUB_DOMAIN, node, "i-1", PAYLOAD)
    live_prosody.unregister(sender_user)
    live_prosody.start()
    refused = await adapter.wait_event(lambda e: e.kind == "authentication_failed")
    assert refused.detail["will_retry"] is False
    not_sent = await adapter.wait_event(
        lambda e: e.kind == "message_not_sent" and e.stanza_id == waiting.stanza_id
    )
    assert not_sent.detail["reason"] == "authentication_failed"
    refusal = await adapter.wait_for(of_kind("request_rejected", waiting.stanza_id))
    assert refusal.fact["reject_reason"] == "stream_unavailable", explain(refusal)
    assert not any(e.kind == "message_sent" and e.stanza_id == waiting.stanza_id for e in adapter.events)
