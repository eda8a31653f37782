"""What the adapter knows about the outbound side when evidence arrives: the input facts are built from."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime

from xmpp_connect.model.frozen import dict_init


@dict_init
@dataclass(frozen=True)
class OutboundRecord:
    """One outbound stanza the adapter sent, as correlation needs it."""

    stanza_id: str
    to_jid: str
    endpoint_type: str
    message_type: str = "chat"
    origin_id: str | None = None
    message_id: str | None = None
    attempt_id: str | None = None
    receipt_requested: bool = False
    markable: bool = False
    sent_at: datetime | None = None
    stable_id: str | None = None
    """The id a MUC room or server assigned (XEP-0359 stanza-id): room markers and replies name it."""


@dict_init
@dataclass(frozen=True)
class CorrelationContext:
    """Everything beyond the stanza itself that a fact may depend on. Unknown stays None."""

    outbound: OutboundRecord | None = None
    known_resources: frozenset[str] = frozenset()
    delegates: frozenset[str] = frozenset()
    recipient_available: bool | None = None
    addressee_resource_count: int | None = None
    subscription: str | None = None
    cap_receipts: bool | None = None
    cap_markers: bool | None = None
    cap_offline_storage: bool | None = None
    room_anonymity: str | None = None
    occupant_real_jid: str | None = None
    late: bool = False
    authenticated_stream: bool = True
    via_component: bool = False
    stop_suppression_enabled: bool = False
    reply_via: str | None = None
    marker_inferred: bool = False
    correlation_ambiguous: bool = False
    context_registered: bool | None = None
    """An inbound message tied to none of ours: whether its sender's bare JID has a live tracking context."""
    extra: dict[str, object] = field(default_factory=dict)


def _timestamp(name: str, value: object) -> datetime:
    """ISO 8601 with a zone (``Z`` or an offset) -> aware datetime."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name}: not an ISO 8601 timestamp: {value!r}") from None
    else:
        raise ValueError(f"{name}: expected an ISO 8601 timestamp string, got {type(value).__name__}")
    if parsed.tzinfo is None:
        raise ValueError(f"{name}: timestamp {value!r} has no time zone (add Z or an offset)")
    return parsed


def _reject_unknown(where: str, data: dict, known: set[str]) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; allowed: {sorted(known)}")


def _outbound_from_dict(data: object) -> OutboundRecord:
    if not isinstance(data, dict):
        raise ValueError(f"outbound: expected a mapping, got {type(data).__name__}")
    _reject_unknown("outbound", data, {f.name for f in fields(OutboundRecord)})
    values = dict(data)
    if values.get("sent_at") is not None:
        values["sent_at"] = _timestamp("outbound.sent_at", values["sent_at"])
    try:
        return OutboundRecord(**values)
    except TypeError as exc:
        raise ValueError(f"outbound: {exc}") from None


def context_from_dict(data: dict) -> CorrelationContext:
    """Build a CorrelationContext from plain data (a scenario file, JSON): ``outbound`` as a nested mapping,
    lists for the set fields, ISO timestamps. Unknown keys raise ValueError naming them."""
    _reject_unknown("context", data, {f.name for f in fields(CorrelationContext)})
    values = dict(data)
    if values.get("outbound") is not None:
        values["outbound"] = _outbound_from_dict(values["outbound"])
    for name in ("known_resources", "delegates"):
        if name in values:
            items = values[name]
            if isinstance(items, str) or not isinstance(items, list | tuple | set | frozenset):
                raise ValueError(f"context.{name}: expected a list of JIDs")
            values[name] = frozenset(items)
    if "extra" in values and not isinstance(values["extra"], dict):
        raise ValueError("context.extra: expected a mapping")
    try:
        return CorrelationContext(**values)
    except TypeError as exc:
        raise ValueError(f"context: {exc}") from None
