"""XEP-0333 cumulative markers: a displayed marker covers the earlier markable, not yet marked messages."""

from xmpp_connect.facts.markers import marker_coverage
from xmpp_connect.model.correlation import OutboundRecord


def _sent(stanza_id: str, markable: bool = True) -> OutboundRecord:
    return OutboundRecord(
        stanza_id=stanza_id, to_jid="bob@localhost", endpoint_type="bare_jid", origin_id=f"o-{stanza_id}",
        markable=markable,
    )


CONVERSATION = [_sent("m1"), _sent("m2", markable=False), _sent("m3"), _sent("m4"), _sent("m5")]


def test_marker_covers_earlier_markable_messages_in_send_order() -> None:
    coverage = marker_coverage(CONVERSATION, "m4")
    assert coverage is not None
    assert coverage.named.stanza_id == "m4"
    assert [r.stanza_id for r in coverage.inferred] == ["m1", "m3"]


def test_already_marked_messages_are_not_inferred_again() -> None:
    coverage = marker_coverage(CONVERSATION, "m5", already_marked={"m1", "m3", "m4"})
    assert coverage is not None
    assert coverage.inferred == ()


def test_marker_may_name_the_origin_id() -> None:
    coverage = marker_coverage(CONVERSATION, "o-m3")
    assert coverage is not None
    assert coverage.named.stanza_id == "m3"
    assert [r.stanza_id for r in coverage.inferred] == ["m1"]


def test_first_message_covers_nothing_else_and_later_ones_are_untouched() -> None:
    coverage = marker_coverage(CONVERSATION, "m1")
    assert coverage is not None
    assert coverage.inferred == ()


def test_unknown_id_covers_nothing() -> None:
    assert marker_coverage(CONVERSATION, "elsewhere") is None
    assert marker_coverage([], "m1") is None
