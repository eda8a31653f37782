"""The adapter side of an integration test: a real SlixmppProvider feeding the real EvidencePipeline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

from prosody import ProsodyServer, TestUser
from recipients import Recipient

from xmpp_connect.config.settings import AccountConfig, Secret
from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.observation import LateCheck, Observation
from xmpp_connect.evidence.pipeline import EvidencePipeline
from xmpp_connect.facts.outbound_index import InMemoryOutboundIndex
from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.providers.base import Backoff, SessionTuning
from xmpp_connect.providers.slixmpp_client import SlixmppProvider
from xmpp_connect.providers.stanza_builders import OutboundMessage
from xmpp_connect.xmpp.stanzas import parse_stanza

WAIT = 30.0



TUNING = {f.name for f in fields(SessionTuning)}


def client_account(ref: str, user: TestUser, **settings: Any) -> tuple[AccountConfig, SessionTuning]:
    """A client account's configuration and its provider's session tuning, from keywords of either."""
    tuning = SessionTuning(**{k: v for k, v in settings.items() if k in TUNING})
    account = {k: v for k, v in settings.items() if k not in TUNING}
    return AccountConfig(ref=ref, provider="slixmpp", jid=user.jid, password=Secret(user.password),
                         **account), tuning

class AdapterUnderTest:
    """One account's provider and the pipeline; every native event and observation is kept in order."""

    def __init__(self, server: ProsodyServer, user: TestUser, classifier: Classifier, commands: CommandTable,
                 account: str = "notify", receipt_timeout: timedelta | None = None,
                 index: InMemoryOutboundIndex | None = None, **settings: Any) -> None:
        self.server = server
        self.user = user
        self.index = index or InMemoryOutboundIndex()
        self.events: list[NativeEvent] = []
        self.observations: list[Observation] = []
        self.dead_letters: list[tuple[NativeEvent, str]] = []
        self._changed = asyncio.Event()
        self.pipeline = EvidencePipeline(classifier, commands, self.index, self._observed,
                                         dead_letter=self._dead_lettered, late=_elapsed(receipt_timeout))
        defaults: dict[str, Any] = {
            "host": "127.0.0.1", "port": server.port, "ca_certs": str(server.cert_path),
            "backoff": Backoff(initial=0.1, maximum=1.0), "ping_interval": 30.0,
        }
        self._defaults = defaults
        self.settings, tuning = client_account(account, user, **{**defaults, **settings})
        self.provider = SlixmppProvider(self.settings, self._native, tuning)
        self.others: list[SlixmppProvider] = []

    async def add_account(self, user: TestUser, account: str, **settings: Any) -> SlixmppProvider:
        """Another account of the same adapter (§34), started, feeding the same pipeline and index."""
        config, tuning = client_account(account, user, **{**self._defaults, **settings})
        provider = SlixmppProvider(config, self._native, tuning)
        self.others.append(provider)
        assert await provider.start(timeout=WAIT), f"account {account} did not get a session"
        return provider

    def _native(self, event: NativeEvent) -> None:
        self.events.append(event)
        self.pipeline.handle(event)
        self._changed.set()

    def _dead_lettered(self, event: NativeEvent, reason: str) -> None:
        self.dead_letters.append((event, reason))

    def _observed(self, observation: Observation) -> None:
        self.observations.append(observation)

    async def start(self) -> bool:
        return await self.provider.start(timeout=WAIT)

    async def stop(self) -> None:
        for provider in (*self.others, self.provider):
            await asyncio.wait_for(provider.stop(), WAIT)

    def send(self, to: str, body: str = "Please acknowledge incident 42.", **options: Any) -> OutboundRecord:
        return self.provider.send_message(OutboundMessage(to_jid=to, body=body, **options))

    async def wait_for(self, predicate: Callable[[Observation], bool], timeout: float = WAIT) -> Observation:
        """The first observation (already seen or still to come) that satisfies ``predicate``; bounded."""
        async def scan() -> Observation:
            seen = 0
            while True:
                for observation in self.observations[seen:]:
                    if predicate(observation):
                        return observation
                seen = len(self.observations)
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(scan(), timeout)

    async def wait_event(self, predicate: Callable[[NativeEvent], bool],
                         timeout: float = WAIT) -> NativeEvent:
        """The first native event satisfying ``predicate``; bounded."""
        async def scan() -> NativeEvent:
            seen = 0
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.events)
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(scan(), timeout)

    def about(self, stanza_id: str, kind: str | None = None) -> list[Observation]:
        """Observations about one outbound stanza (optionally of one fact kind), in arrival order."""
        return [
            o for o in self.observations
            if o.outbound is not None and o.outbound.stanza_id == stanza_id
            and (kind is None or o.fact["kind"] == kind)
        ]


def of_kind(kind: str, stanza_id: str | None = None, **fact: Any) -> Callable[[Observation], bool]:
    """A predicate: the fact has this kind (and these field values), about this stanza when given."""
    def matches(observation: Observation) -> bool:
        if observation.fact.get("kind") != kind:
            return False
        outbound = observation.outbound
        if stanza_id is not None and (outbound is None or outbound.stanza_id != stanza_id):
            return False
        return all(observation.fact.get(name) == value for name, value in fact.items())
    return matches


def sender_of(observation: Observation) -> str | None:
    """The raw ``from`` of the stanza an observation came from."""
    return parse_stanza(observation.event.raw).from_attr if observation.event.raw else None


def presence_from(full_jid: str, show: str) -> Callable[[Observation], bool]:
    def matches(observation: Observation) -> bool:
        return (observation.fact.get("kind") == "presence" and observation.fact.get("presence_show") == show
                and sender_of(observation) == full_jid)
    return matches


async def befriend(adapter: AdapterUnderTest, *clients: Recipient) -> None:
    """Mutual presence subscription between the adapter's account and each recipient (the adapter
    authorizes and subscribes back by itself); returns once each client's presence was observed."""
    for client in clients:
        client.subscribe_to(adapter.user.jid)
    for client in clients:
        await adapter.wait_for(presence_from(client.full_jid, "available"))


def subclass(observation: Observation) -> str:
    return observation.classification.assessment.subclass


def explain(observation: Observation) -> str:
    """What a failing assertion should show: the fact and what the policy made of it."""
    c = observation.classification
    return f"scenario={c.scenario} rule={c.rule_id} assessment={c.assessment} fact={observation.fact}"


def _elapsed(timeout: timedelta | None) -> LateCheck | None:
    """A LateCheck for tests without a store: late once ``timeout`` has passed since the stanza was sent."""
    if timeout is None:
        return None
    return lambda out: out.sent_at is not None and datetime.now(out.sent_at.tzinfo) - out.sent_at > timeout
