"""``correlation_context`` builds the same CorrelationContext as its constructor."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from xmpp_connect.model.correlation import CorrelationContext, OutboundRecord, correlation_context

OUTBOUND = OutboundRecord("xc-1", "bob@localhost", "bare_jid", sent_at=datetime(2026, 12, 5, tzinfo=UTC))


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"outbound": OUTBOUND, "known_resources": frozenset({"bob@localhost/phone"}),
         "recipient_available": True, "addressee_resource_count": 1, "subscription": "both",
         "cap_receipts": True, "cap_markers": None,
         "cap_offline_storage": False, "late": True, "stop_suppression_enabled": True, "reply_via": "thread",
         "room_anonymity": None, "occupant_real_jid": None},
        {"extra": {"a": 1}, "context_registered": False, "marker_inferred": True},
    ],
)
def test_the_same_object_as_the_constructor_builds(values: dict[str, object]) -> None:
    built, constructed = correlation_context(**values), CorrelationContext(**values)  # type: ignore[arg-type]
    assert built == constructed and hash(built.outbound) == hash(constructed.outbound)
    assert list(vars(built).items()) == list(vars(constructed).items())
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.late = True  # type: ignore[misc]
    assert dataclasses.replace(built, late=True) == dataclasses.replace(constructed, late=True)


def test_each_context_has_its_own_extra_and_unknown_fields_are_refused() -> None:
    assert correlation_context().extra is not correlation_context().extra
    with pytest.raises(TypeError):
        correlation_context(recipient_availble=True)
