"""Time-ordered ids (spec/ids.md); the digest ids of before still derived about messages that have them."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

from xmpp_connect.model.evidence import dedupe_event_id
from xmpp_connect.model.ids import message_time, time_ordered
from xmpp_connect.sending.ids import message_id
from xmpp_connect.store import SqliteStore
from xmpp_connect.store.idempotency import operation_id, stanza_id, timer_id

AT = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)
OLD_MESSAGE = "xmppmsg_" + "0f" * 12


def _sha(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def test_the_time_part_is_the_milliseconds_since_the_epoch_so_ids_sort_by_time() -> None:
    assert time_ordered(AT, "f" * 64) == f"{int(AT.timestamp()) * 1000:012x}" + "f" * 20
    ids = [operation_id("t", f"key-{n}", AT + timedelta(milliseconds=n)) for n in range(50)]
    assert ids == sorted(ids) and len(set(ids)) == 50


def test_only_a_time_ordered_message_id_has_a_time_part() -> None:
    message = message_id(operation_id("t", "k", AT))
    assert message_time(message) == time_ordered(AT, "")
    assert message_time(OLD_MESSAGE) is None and message_time(None) is None and message_time("m1") is None


def test_a_repeated_observation_of_a_time_ordered_message_has_one_id_beside_the_message() -> None:
    message = message_id(operation_id("t", "k", AT))
    key = f"{message}|receipt|bob@example.net/phone|s1|notification.endpoint.accepted"
    event = dedupe_event_id("t", message, key)
    assert event == dedupe_event_id("t", message, key) != dedupe_event_id("t", message, key + "x")
    assert event == "evt_" + message_time(message) + _sha("t", key)[:20]  # type: ignore[operator]


def test_ids_derived_from_a_message_with_a_digest_id_are_made_as_before() -> None:
    key = f"{OLD_MESSAGE}|receipt|bob@example.net/phone|s1|notification.endpoint.accepted"
    assert dedupe_event_id("t", OLD_MESSAGE, key) == "evt_" + _sha("t", key)[:32]
    assert dedupe_event_id("t", None, "|x") == "evt_" + _sha("t", "|x")[:32]
    old_timer = _sha("operation", "t", f"{OLD_MESSAGE}\x00receipt")[:24]
    assert timer_id("t", OLD_MESSAGE, "receipt") == "tmr_" + old_timer
    message = message_id(operation_id("t", "k", AT))
    assert timer_id("t", message, "receipt").startswith("tmr_" + message_time(message))  # type: ignore[operator]


def test_the_first_stanza_id_sorts_with_its_operation_and_one_of_before_is_made_as_then() -> None:
    """An intake item queued before the upgrade is carried out under the operation id the worker answered."""
    operation = operation_id("t", "k", AT)
    assert stanza_id("t", "k", operation) == "xc-" + operation[7:19] + _sha("stanza", "t", "k")[:20]
    assert stanza_id("t", "k", "xmppop_" + "ab" * 12) == "xc-" + _sha("stanza", "t", "k")[:24]


def test_raw_stanza_ids_are_time_ordered_by_their_recording(tmp_path):
    """A raw stanza's id starts with the time it was recorded (not the stanza's own time, which may be an
    archive's or a delay stamp's): new rows go to the primary key's right edge."""
    store = SqliteStore(tmp_path / "ids.sqlite3")
    before = datetime.now(UTC)
    refs = [store.record_raw("t", "stream", "<message xmlns='jabber:client' id='m'/>",
                             datetime(2020, 1, 1, tzinfo=UTC)) for _ in range(3)]
    after = datetime.now(UTC)
    lowest, highest = (time_ordered(at, "") for at in (before, after))
    for ref in refs:
        assert re.fullmatch(r"raw_[0-9a-f]{32}", ref.raw_event_id)
        assert lowest <= ref.raw_event_id.removeprefix("raw_")[:12] <= highest
    assert len({ref.raw_event_id for ref in refs}) == 3
