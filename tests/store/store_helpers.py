"""Test data for the store tests: a precedence and classifications as the policy would produce them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from xmpp_connect.model.classification import Assessment, Classification, Conflict, Grade, Precedence
from xmpp_connect.model.evidence import DedupeBasis, EvidenceContext, EvidenceEvent, build_evidence_events

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
POLICY_VERSION = "0123456789abcdef"

PRECEDENCE = Precedence(
    order=(
        "success.acknowledged_by_client",
        "success.reply_received",
        "success.displayed_by_client",
        "success.delivered_to_client",
        "fail.recipient_not_found",
        "fail.recipient_blocked",
        "fail.expired",
        "undef.receipt_requested_no_response",
        "undef.offline_stored",
        "undef.server_acknowledged_only",
        "undef.sent_to_server_only",
        "undef.pending",
    ),
    conflicts=(
        Conflict(
            name="delivered_and_rejected",
            when_any=frozenset({"success.delivered_to_client", "success.displayed_by_client"}),
            and_any=frozenset({"fail.recipient_not_found", "fail.recipient_blocked"}),
            result=Assessment("undef", "undef.conflicting_evidence", "low"),
        ),
    ),
)

# scenario -> assessment, normalized events, attempt state, grade
SCENARIOS: dict[str, tuple[Assessment, tuple[str, ...], str | None, str | None]] = {
    "adapter_accepted": (
        Assessment("undef", "undef.pending", "low"),
        ("notification.attempt.accepted_by_adapter",),
        "accepted_by_adapter",
        None,
    ),
    "server_acknowledged": (
        Assessment("undef", "undef.server_acknowledged_only", "medium"),
        ("notification.attempt.accepted_by_provider",),
        "server_acknowledged",
        "server_acceptance",
    ),
    "delivered_to_client": (
        Assessment("success", "success.delivered_to_client", "high"),
        ("notification.endpoint.accepted",),
        "delivered_to_client",
        "delivery_receipt",
    ),
    "displayed_by_client": (
        Assessment("success", "success.displayed_by_client", "high"),
        ("interaction.notification.opened",),
        "displayed_by_client",
        "displayed_marker",
    ),
    "reply_received": (
        Assessment("success", "success.reply_received", "high"),
        ("interaction.reply_received",),
        "reply_received",
        "authenticated_reply",
    ),
    "receipt_timeout": (Assessment("undef", "undef.receipt_requested_no_response", "low"), (), None, None),
    "expired": (Assessment("fail", "fail.expired", "high"), (), "expired", None),
    "stanza_error.item_not_found": (
        Assessment("fail", "fail.recipient_not_found", "high"),
        ("notification.endpoint.rejected_permanent",),
        "stanza_error_received",
        "endpoint_rejection",
    ),
    "stream_connected": (
        Assessment("success", "success.sent_to_server", "low"),
        ("system.adapter.health_changed",),
        None,
        None,
    ),
}
KINDS = {
    "adapter_accepted": "adapter_accepted",
    "server_acknowledged": "sm_ack",
    "delivered_to_client": "receipt",
    "displayed_by_client": "marker",
    "reply_received": "inbound_message",
    "receipt_timeout": "timer",
    "expired": "timer",
    "stanza_error.item_not_found": "stanza_error",
    "stream_connected": "stream_connected",
}


def classification(scenario: str, **fact: Any) -> Classification:
    """A Classification as the policy would produce it for ``scenario`` (test data, not a fake classifier)."""
    assessment, events, state, grade = SCENARIOS[scenario]
    return Classification(
        scenario=scenario,
        rule_id=f"test.{scenario}",
        policy_version=POLICY_VERSION,
        assessment=assessment,
        events=events,
        attempt_state=state,
        grade=_grade(grade) if grade else None,
        notes=(f"note for {scenario}",),
        scope="health" if scenario == "stream_connected" else "message",
        fact={"kind": KINDS[scenario], **fact},
    )


def _grade(grade_id: str) -> Grade:
    return Grade(grade_id, "strong", "medium", "none", "medium", "medium", "high", "high", "low")


def evidence(
    tenant_id: str,
    message_id: str,
    scenario: str,
    at: datetime,
    *,
    sender: str | None = None,
    stanza_id: str | None = None,
    delay: datetime | None = None,
    late: bool = False,
    case_id: str | None = "case-1",
    participant_id: str | None = "participant-1",
    endpoint: str | None = None,
    **fact: Any,
) -> tuple[EvidenceEvent, ...]:
    """Evidence events for one observation; with ``sender`` and ``stanza_id`` they carry a dedupe basis."""
    dedupe = DedupeBasis(KINDS[scenario], sender, stanza_id) if sender and stanza_id else None
    context = EvidenceContext(
        tenant_id=tenant_id,
        observed_at=at,
        delay_stamp=delay,
        message_id=message_id,
        attempt_id=f"{message_id}-a1",
        case_id=case_id,
        participant_id=participant_id,
        correlation_id="corr-1",
        endpoint_ref=endpoint,
        late=late,
        dedupe=dedupe,
    )
    return build_evidence_events(classification(scenario, **fact), context)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
