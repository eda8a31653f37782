"""What the pipeline hands on (an Observation) and the parts it is wired to: classifier, sinks, lookups."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from xmpp_connect.model.classification import Classification
from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.model.frozen import dict_init
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.model.tracking import TrackingContext
from xmpp_connect.xmpp.stanzas import StanzaView


class PolicyVersion(Protocol):
    @property
    def version(self) -> str: ...


class Classifier(Protocol):
    """xmpp_connect.evidence.classify.Classifier: stateless first-match, so a fact's classification
    depends only on the fact and the policy version."""

    @property
    def policy(self) -> PolicyVersion: ...

    def classify(self, fact: Mapping[str, Any]) -> Classification: ...


@dict_init
@dataclass(frozen=True)
class Observation:
    """One classified piece of evidence: the native event, the fact it became, and what the policy says.

    ``inferred_from`` is the stanza id of the displayed marker whose cumulative meaning produced this
    observation (the event's raw stanza is that marker); None for direct evidence. ``sender`` is the
    stanza's raw ``from`` attribute (kept raw: a bounce from a malformed address can't be parsed back).
    ``delay_stamp`` is the stanza's XEP-0203 delay (or XEP-0313 archive) stamp: when it really happened.
    ``tracking`` is the sender's registered tracking context, for a message tied to none of ours.
    ``view`` is the parsed stanza it came from (what is recorded beside the log reads it instead of parsing
    the raw stanza once more).
    """

    event: NativeEvent
    fact: dict[str, Any]
    classification: Classification
    outbound: OutboundRecord | None
    inferred_from: str | None = None
    sender: str | None = None
    delay_stamp: datetime | None = None
    tracking: TrackingContext | None = None
    view: StanzaView | None = None


ObservationSink = Callable[[Observation], None]
LateCheck = Callable[[OutboundRecord], bool]
"""Whether evidence about this outbound stanza arrives late now (§29): its receipt timeout or expiry fired.
The caller decides (the service asks the store's timer state), so "late" has one definition."""
DeadLetterSink = Callable[[NativeEvent, str], None]
ContextLookup = Callable[[str, datetime], TrackingContext | None]
"""The tracking context registered for a sender JID's bare JID and live at a time, if any (the service asks
the store's endpoints)."""
