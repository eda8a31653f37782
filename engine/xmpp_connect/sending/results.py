"""The §21.2 action result and the parts every result shares."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from xmpp_connect.model.classification import Classification
from xmpp_connect.model.evidence import EvidenceEvent
from xmpp_connect.sending.ids import message_id

ADAPTER_ID = "xmpp-connect.default"


@dataclass(frozen=True)
class ActionDone:
    """The §21.2 result, plus whether it replays an earlier one."""

    result: dict[str, Any]

    @property
    def accepted(self) -> bool:
        return bool(self.result["accepted"])


def result_base(
    action_type: str, request: Mapping[str, Any], operation_id: str, received_at: datetime
) -> dict[str, Any]:
    return {
        "request_id": request["request_id"],
        "adapter_id": ADAPTER_ID,
        "action_type": action_type,
        "adapter_operation_id": operation_id,
        "xmpp_message_id": message_id(operation_id),
        "received_at": received_at.isoformat(),
    }


def summaries(events: Sequence[EvidenceEvent]) -> list[dict[str, str]]:
    """The result's ``initial_events``: the emitted ones."""
    return [
        {"event_type": e.event_type, "event_id": e.event_id, "occurred_at": e.occurred_at.isoformat()}
        for e in events
        if e.emitted
    ]


def assessment_of(classification: Classification) -> dict[str, str]:
    a = classification.assessment
    return {"category": a.category, "subclass": a.subclass, "confidence": a.confidence}
