"""Endpoint quality (§25) as a pure function of an endpoint's evidence log and presence. Diagnostics only:
quality never creates coordination success."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from xmpp_connect.model.evidence import EvidenceEvent
from xmpp_connect.model.quality import QualitySignals
from xmpp_connect.store.records import PresenceState


@dataclass(frozen=True)
class EndpointQuality:
    """§25 XmppEndpointQuality; None means not known."""

    endpoint_ref: str
    jid_valid: bool | None
    domain_resolves: bool | None
    server_reachable: bool | None
    roster_known: bool | None
    subscription_state: str
    last_presence_available_at: datetime | None
    last_presence_unavailable_at: datetime | None
    last_delivery_receipt_at: datetime | None
    last_displayed_marker_at: datetime | None
    last_reply_at: datetime | None
    last_stanza_error_at: datetime | None
    suppression_state: str

    def to_dict(self) -> dict[str, Any]:
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in self.__dict__.items()
        }


def endpoint_quality(
    endpoint_ref: str,
    events: Sequence[EvidenceEvent],
    presence: Sequence[PresenceState],
    suppression_state: str,
    signals: QualitySignals,
    presence_history: Sequence[PresenceState] = (),
) -> EndpointQuality:
    """Summarise what the log says about one endpoint; the latest evidence decides reachability.
    ``presence`` is the current presence per resource; ``presence_history`` (what retention kept) adds
    earlier availability changes to the last_presence_* times. ``signals`` (mappings/quality.yaml) say
    which evidence counts as which §25 signal."""
    message_events = [e for e in events if e.scope != "health"]
    last_positive = _latest(e for e in message_events if signals.reached.matches(e))
    last_unreachable = _latest(e for e in message_events if signals.unreachable.matches(e))
    invalid = _latest(e for e in message_events if signals.invalid_jid.matches(e))
    subscriptions = {p.subscription_state for p in presence} - {"unknown"}
    subscription = next(iter(subscriptions)) if len(subscriptions) == 1 else "unknown"
    seen = [*presence, *presence_history]
    return EndpointQuality(
        endpoint_ref=endpoint_ref,
        jid_valid=False if invalid else (True if last_positive or presence else None),
        domain_resolves=True if last_positive else None,
        server_reachable=_reachable(last_positive, last_unreachable),
        roster_known={"none": False, "unknown": None}.get(subscription, True),
        subscription_state=subscription,
        last_presence_available_at=_latest_presence(p for p in seen if p.availability != "unavailable"),
        last_presence_unavailable_at=_latest_presence(p for p in seen if p.availability == "unavailable"),
        last_delivery_receipt_at=_latest(e for e in message_events if signals.delivery_receipt.matches(e)),
        last_displayed_marker_at=_latest(e for e in message_events if signals.displayed_marker.matches(e)),
        last_reply_at=_latest(e for e in message_events if signals.reply.matches(e)),
        last_stanza_error_at=_latest(e for e in message_events if signals.stanza_error.matches(e)),
        suppression_state=suppression_state,
    )


def _reachable(last_positive: datetime | None, last_unreachable: datetime | None) -> bool | None:
    if last_unreachable is None:
        return True if last_positive else None
    return last_positive is not None and last_positive > last_unreachable


def _latest(events: Iterable[EvidenceEvent]) -> datetime | None:
    return max((e.occurred_at for e in events), default=None)


def _latest_presence(presence: Iterable[PresenceState]) -> datetime | None:
    return max((p.observed_at for p in presence), default=None)
