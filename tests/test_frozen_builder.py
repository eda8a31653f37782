"""``dict_init`` (correlation contexts, evidence events, test classes) builds the objects the dataclass
constructors build."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from xmpp_connect.model.classification import Assessment
from xmpp_connect.model.correlation import CorrelationContext, OutboundRecord
from xmpp_connect.model.evidence import EvidenceEvent
from xmpp_connect.model.frozen import dict_init
from xmpp_connect.store.records import (
    AppendResult,
    DeliveryReceipt,
    DisplayedMarker,
    RawEventRef,
    XmppAttempt,
    XmppMessage,
    XmppStanza,
)


def _plain_twin(cls: type) -> Any:
    """A plain frozen dataclass with ``cls``'s fields (names, order, defaults, default factories,
    keyword-only): its ``__init__`` is the one the dataclass decorator generates."""
    return dataclasses.make_dataclass(
        cls.__name__, [(f.name, f.type, f) for f in dataclasses.fields(cls)], frozen=True,
    )


def _constructed(cls: type, values: dict[str, Any]) -> Any:
    """What the dataclass's generated ``__init__`` builds from ``values``."""
    return _plain_twin(cls)(**values)


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
    built = CorrelationContext(**values)  # type: ignore[arg-type]
    constructed = _constructed(CorrelationContext, values)
    assert built == CorrelationContext(**values) and hash(built.outbound) == hash(constructed.outbound)  # type: ignore[arg-type]
    assert list(vars(built).items()) == list(vars(constructed).items())
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.late = True  # type: ignore[misc]
    assert vars(dataclasses.replace(built, late=True)) == vars(dataclasses.replace(constructed, late=True))


def test_each_context_has_its_own_extra_and_unknown_fields_are_refused() -> None:
    assert CorrelationContext().extra is not CorrelationContext().extra
    with pytest.raises(TypeError):
        CorrelationContext(recipient_availble=True)  # type: ignore[call-arg]


def test_evidence_events_are_built_as_the_constructor_builds_them() -> None:
    values: dict[str, Any] = {
        "tenant_id": "t", "event_id": "evt_1", "event_type": "notification.endpoint.accepted",
        "scenario": "delivered_to_client", "rule_id": "r1", "policy_version": "v1",
        "assessment": Assessment("success", "delivered_to_client", "high"), "grade": "delivery_receipt",
        "attempt_state": "delivered", "occurred_at": datetime(2026, 12, 5, tzinfo=UTC), "late": True,
        "notes": ("n",), "sender_jid": "bob@localhost/phone",
    }
    built, constructed = EvidenceEvent(**values), _constructed(EvidenceEvent, values)
    assert built == EvidenceEvent(**values) and list(vars(built).items()) == list(vars(constructed).items())
    assert built.fact == {} and built.fact is not EvidenceEvent(**values).fact
    del values["occurred_at"]
    with pytest.raises(TypeError):
        EvidenceEvent(**values)


def test_only_plain_frozen_dataclasses() -> None:
    @dataclasses.dataclass(frozen=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            assert self.value >= 0

    with pytest.raises(TypeError):
        dict_init(Checked)


@dict_init
@dataclasses.dataclass(frozen=True)
class _AtOnce:
    name: str
    count: int = 0
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    note: str | None = dataclasses.field(default=None, kw_only=True)


_Plain = _plain_twin(_AtOnce)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("a",), {}),
        (("a", 2), {}),
        (("a",), {"tags": {"k": "v"}, "note": "n"}),
        ((), {"name": "a", "count": 3}),
    ],
)
def test_dict_init_builds_what_the_constructor_builds(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    built, constructed = _AtOnce(*args, **kwargs), _Plain(*args, **kwargs)
    assert list(vars(built).items()) == list(vars(constructed).items())
    assert built == _AtOnce(*args, **kwargs) and hash(built.name) == hash(constructed.name)
    assert built.tags is not _AtOnce(*args, **kwargs).tags or "tags" in kwargs
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.count = 5  # type: ignore[misc]
    assert vars(dataclasses.replace(built, count=9)) == vars(dataclasses.replace(constructed, count=9))


def test_dict_init_refuses_what_the_constructor_refuses_and_unfrozen_classes() -> None:
    with pytest.raises(TypeError):
        _AtOnce()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _AtOnce("a", 1, {}, "n")  # type: ignore[misc]
    with pytest.raises(TypeError):
        _AtOnce("a", unknown=1)  # type: ignore[call-arg]

    @dataclasses.dataclass
    class Mutable:
        name: str

    with pytest.raises(TypeError):
        dict_init(Mutable)


@pytest.mark.parametrize(
    "cls",
    [XmppMessage, XmppAttempt, XmppStanza, DeliveryReceipt, DisplayedMarker, RawEventRef, AppendResult,
     OutboundRecord],
)
def test_the_records_built_per_send_are_the_constructors(cls: type) -> None:
    required = {f.name: f"{f.name}-value" for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    every = {f.name: f"{f.name}-given" for f in dataclasses.fields(cls)}
    for values in (required, every):
        built, constructed = cls(**values), _constructed(cls, values)
        assert list(vars(built).items()) == list(vars(constructed).items())
        assert built == cls(**values) and _hash_or_none(built) == _hash_or_none(constructed)
        assert repr(built) == repr(constructed).replace(constructed.__class__.__qualname__, cls.__qualname__)
        with pytest.raises(dataclasses.FrozenInstanceError):
            object.__getattribute__(built, "__setattr__")("tenant_id", "other")
    changed = {name: "changed" for name in list(required)[:1]}
    assert vars(dataclasses.replace(cls(**required), **changed)) == vars(
        dataclasses.replace(_constructed(cls, required), **changed))


def _hash_or_none(value: object) -> int | None:
    """The object's hash; None when a field is unhashable (a dict)."""
    try:
        return hash(value)
    except TypeError:
        return None
