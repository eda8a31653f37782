"""Endpoint quality (§25) as a pure function of an endpoint's evidence log and presence. Diagnostics only:
quality never creates coordination success."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from xmpp_connect.model.evidence import EvidenceEvent
from xmpp_connect.store.records import PresenceState

_DELIVERED = frozenset({"success.delivered_to_client"})
_DISPLAYED = frozenset({"success.displayed_by_client"})
_INVALID = frozenset({"fail.invalid_jid"})
_UNREACHABLE = frozenset({"fail.remote_server_unreachable"})
_REPLY_KINDS = frozenset({"inbound_message", "muc_message"})
_REMOTE_POSITIVE = frozenset(
    {
        "success.delivered_to_client",
        "success.displayed_by_client",
        "success.acknowledged_by_client",
        "success.reply_received",
        "undef.reply_identity_uncertain",
    }
)


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
    presence_history: Sequence[PresenceState] = (),
) -> EndpointQuality:
    """Summarise what the log says about one endpoint; the latest evidence decides reachability.
    ``presence`` is the current presence per resource; ``presence_history`` (what retention kept) adds
    earlier availability changes to the last_presence_* times."""
    message_events = [e for e in events if e.scope != "health"]
    last_positive = _latest(e for e in message_events if e.assessment.subclass in _REMOTE_POSITIVE)
    last_unreachable = _latest(e for e in message_events if e.assessment.subclass in _UNREACHABLE)
    invalid = _latest(e for e in message_events if e.assessment.subclass in _INVALID)
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
        last_delivery_receipt_at=_latest(
            e for e in message_events if e.assessment.subclass in _DELIVERED or e.grade == "delivery_receipt"
        ),
        last_displayed_marker_at=_latest(
            e for e in message_events if e.assessment.subclass in _DISPLAYED or e.grade == "displayed_marker"
        ),
        last_reply_at=_latest(e for e in message_events if e.fact.get("kind") in _REPLY_KINDS),
        last_stanza_error_at=_latest(
            e
            for e in message_events
            if e.fact.get("kind") == "stanza_error" or e.scenario.startswith("stanza_error.")
        ),
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
