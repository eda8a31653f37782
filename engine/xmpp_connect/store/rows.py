"""Rows <-> records, and the small SQL helpers every table module shares."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson

from xmpp_connect.model.classification import Assessment
from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.model.evidence import EvidenceEvent
from xmpp_connect.store.records import (
    PresenceState,
    Suppression,
    Timer,
    XmppAttempt,
    XmppMessage,
    XmppStanza,
)
from xmpp_connect.store.timestamps import from_text, from_text_or_none, to_text

Row = Mapping[str, Any]


# -- row <-> record ----------------------------------------------------------------------------

EVENT_COLUMNS = (
    "seq",
    "tenant_id",
    "event_id",
    "event_type",
    "scenario",
    "rule_id",
    "policy_version",
    "category",
    "subclass",
    "confidence",
    "grade",
    "attempt_state",
    "message_id",
    "attempt_id",
    "case_id",
    "participant_id",
    "correlation_id",
    "endpoint_ref",
    "raw_ref",
    "occurred_at",
    "recorded_at",
    "late",
    "inferred",
    "emitted",
    "scope",
    "dedupe_key",
    "notes",
    "fact",
    "sender_jid",
    "sender_resource",
    "grade_dimensions",
)
INSERT_EVENT = (
    f"INSERT INTO evidence_events ({', '.join(EVENT_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in EVENT_COLUMNS)})"
)


def event_row(event: EvidenceEvent, recorded_text: str | None = None) -> tuple[Any, ...]:
    """The stored row of a placed entry; ``recorded_text``: its ``recorded_at`` as stored, when the caller
    wrote it once for every entry of an append."""
    assert event.seq is not None and event.recorded_at is not None
    return (
        event.seq,
        event.tenant_id,
        event.event_id,
        event.event_type,
        event.scenario,
        event.rule_id,
        event.policy_version,
        event.assessment.category,
        event.assessment.subclass,
        event.assessment.confidence,
        event.grade,
        event.attempt_state,
        event.message_id,
        event.attempt_id,
        event.case_id,
        event.participant_id,
        event.correlation_id,
        event.endpoint_ref,
        event.raw_ref,
        to_text(event.occurred_at),
        recorded_text or to_text(event.recorded_at),
        int(event.late),
        int(event.inferred),
        int(event.emitted),
        event.scope,
        event.dedupe_key,
        _notes_json(tuple(event.notes)),
        to_json(event.fact),
        event.sender_jid,
        event.sender_resource,
        _dimensions_json(tuple(event.grade_dimensions.items())),
    )


@lru_cache(maxsize=512)
def _notes_json(notes: tuple[str, ...]) -> str:
    """An entry's notes come from its rule: few distinct lists, each encoded once."""
    return to_json(list(notes))


@lru_cache(maxsize=512)
def _dimensions_json(dimensions: tuple[tuple[str, str], ...]) -> str:
    """An entry's grade dimensions are its grade's: few distinct sets, each encoded once."""
    return to_json(dict(dimensions))


def evidence_from_row(row: Row) -> EvidenceEvent:
    return EvidenceEvent(
        tenant_id=row["tenant_id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        scenario=row["scenario"],
        rule_id=row["rule_id"],
        policy_version=row["policy_version"],
        assessment=Assessment(row["category"], row["subclass"], row["confidence"]),
        grade=row["grade"],
        attempt_state=row["attempt_state"],
        occurred_at=from_text(row["occurred_at"]),
        message_id=row["message_id"],
        attempt_id=row["attempt_id"],
        case_id=row["case_id"],
        participant_id=row["participant_id"],
        correlation_id=row["correlation_id"],
        endpoint_ref=row["endpoint_ref"],
        raw_ref=row["raw_ref"],
        late=bool(row["late"]),
        inferred=bool(row["inferred"]),
        emitted=bool(row["emitted"]),
        scope=row["scope"],
        dedupe_key=row["dedupe_key"],
        notes=tuple(json.loads(row["notes"])),
        fact=json.loads(row["fact"]),
        seq=int(row["seq"]),
        recorded_at=from_text(row["recorded_at"]),
        sender_jid=row["sender_jid"],
        sender_resource=row["sender_resource"],
        grade_dimensions=json.loads(row["grade_dimensions"]),
    )


def message_from_row(row: Row) -> XmppMessage:
    return XmppMessage(
        row["tenant_id"],
        row["message_id"],
        from_text(row["created_at"]),
        row["case_id"],
        row["participant_id"],
        row["purpose"],
        row["body_ref"],
        row["template_ref"],
        json.loads(row["tracking_context"]),
    )


def attempt_from_row(row: Row) -> XmppAttempt:
    return XmppAttempt(
        row["tenant_id"],
        row["attempt_id"],
        row["message_id"],
        row["account_ref"],
        row["from_jid"],
        row["to_jid"],
        row["to_endpoint_type"],
        from_text(row["created_at"]),
        from_text(row["updated_at"]),
        row["message_type"],
        row["state"],
        row["server_ref"],
        row["stanza_id"],
        row["origin_id"],
        row["server_id"],
        None if row["expected_evidence"] is None else tuple(json.loads(row["expected_evidence"])),
    )


def stanza_from_row(row: Row) -> XmppStanza:
    return XmppStanza(
        row["tenant_id"],
        row["stanza_ref"],
        row["direction"],
        row["stanza_type"],
        row["from_jid"],
        row["to_jid"],
        row["message_type"],
        row["endpoint_type"],
        row["stanza_id"],
        row["origin_id"],
        row["stable_id"],
        row["message_id"],
        row["attempt_id"],
        bool(row["receipt_requested"]),
        bool(row["markable"]),
        row["payload_ref"],
        from_text_or_none(row["sent_at"]),
        from_text_or_none(row["received_at"]),
        row["raw_ref"],
    )


def outbound_from_row(row: Row) -> OutboundRecord:
    return OutboundRecord(
        stanza_id=row["stanza_id"] or row["stanza_ref"],
        to_jid=row["to_jid"],
        endpoint_type=row["endpoint_type"],
        message_type=row["message_type"],
        origin_id=row["origin_id"],
        stable_id=row["stable_id"],
        message_id=row["message_id"],
        attempt_id=row["attempt_id"],
        receipt_requested=bool(row["receipt_requested"]),
        markable=bool(row["markable"]),
        sent_at=from_text_or_none(row["sent_at"]),
    )


def presence_from_row(row: Row) -> PresenceState:
    return PresenceState(
        row["tenant_id"],
        row["bare_jid"],
        row["availability"],
        from_text(row["observed_at"]),
        row["resource"] or None,
        row["priority"],
        row["status_text"],
        row["subscription_state"],
        row["confidence"],
    )


def suppression_from_row(row: Row) -> Suppression:
    return Suppression(
        row["tenant_id"], row["bare_jid"], row["state"], from_text(row["created_at"]), row["reason"]
    )


def timer_from_row(row: Row) -> Timer:
    return Timer(
        row["tenant_id"],
        row["timer_id"],
        row["message_id"],
        row["timer"],
        from_text(row["due_at"]),
        row["attempt_id"],
        from_text_or_none(row["fired_at"]),
    )


def where_equal(tenant_id: str, **equal: str | None) -> tuple[str, list[Any]]:
    where = ["tenant_id = ?"]
    params: list[Any] = [tenant_id]
    for column, value in equal.items():
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    return " AND ".join(where), params


def check_allowed(value: str, allowed: frozenset[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what}: {value!r}")


_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
"""One encoder for every stored JSON column (``json.dumps`` with options builds a new one per call)."""


_PLAIN = frozenset((str, int, bool, type(None)))
"""The exact types whose JSON orjson writes as ``json`` does (what it refuses, a lone surrogate or an integer
beyond 64 bits, takes ``json``; model/chain.py's ``canonical_json`` relies on the same)."""
_STR = frozenset((str,))


def to_json(value: Any) -> str:
    """Sorted keys, no whitespace, ASCII only. A flat dict of plain values (an entry's fact) is written by
    orjson when its text is printable ASCII: then it is the very text ``json`` writes (``json`` escapes
    every other character, orjson only the control characters)."""
    plain = type(value) is dict and _STR.issuperset(map(type, value))
    if plain and _PLAIN.issuperset(map(type, value.values())):
        try:
            text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            return _JSON.encode(value)
        if text.isascii() and b"\x7f" not in text:
            return text.decode()
    return _JSON.encode(value)


def bool_to_int(value: bool | None) -> int | None:
    return None if value is None else int(value)


def int_to_bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)
