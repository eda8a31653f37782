"""``outbox_written``'s answer equals the row it moved, whether it comes from the statement (PostgreSQL, a
send accepted by another process) or from what the store accepted and wrote itself (SQLite): through new
attempts, acks, ends, metadata-only mode and rolled-back transactions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from xmpp_connect.store import StoreOptions
from xmpp_connect.store.outbox import ACCEPTED, UNKNOWN, OutboxEntry, Written

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
REQUEST = {"action_type": "notification.send", "content": {"body": "secret body"}, "options": {"x": [1, 2]}}


def _entry(tenant: str, n: int, attempt: str | None = None) -> OutboxEntry:
    return OutboxEntry(tenant, f"stanza-{n}", "notify", f"xmppmsg_{n}", attempt or f"xmppatt_{n}", ACCEPTED,
                       REQUEST, "secret body", NOW)


def _row_answer(store, tenant: str, stanza_id: str) -> Written:
    """What the statement's ``RETURNING`` gives for the row as stored now."""
    row = store._one(
        "SELECT message_id, attempt_id, writes, request FROM outbox WHERE tenant_id = ? AND stanza_id = ?",
        (tenant, stanza_id),
    )
    return Written(row["message_id"], row["attempt_id"], int(row["writes"]), row["request"])


def test_written_answers_the_row_through_new_attempts_and_acks(store, tenant):
    store.outbox_accept(_entry(tenant, 1))
    first = store.outbox_written(tenant, "stanza-1", NOW)
    assert first == _row_answer(store, tenant, "stanza-1") and first.writes == 1
    assert store.outbox_written(tenant, "stanza-1", NOW) is None, "written once per attempt"

    store.outbox_new_attempt(tenant, "stanza-1", "xmppatt_1.2")
    second = store.outbox_written(tenant, "stanza-1", NOW)
    assert second == _row_answer(store, tenant, "stanza-1")
    assert (second.attempt_id, second.writes) == ("xmppatt_1.2", 2)

    assert store.outbox_acked(tenant, "stanza-1", NOW) is True
    store.outbox_new_attempt(tenant, "stanza-1", "xmppatt_1.3")
    assert store.outbox_written(tenant, "stanza-1", NOW) is None, "an acked send is not written again"

    store.outbox_accept(_entry(tenant, 2))
    assert store.outbox_end(tenant, "stanza-2", UNKNOWN, "session_lost") is True
    assert store.outbox_written(tenant, "stanza-2", NOW) is None, "an ended send is not written"

    store.outbox_accept(_entry(tenant, 3))
    store.outbox_hold(tenant, "stanza-3", True)
    store.outbox_handing(tenant, "stanza-3", NOW)
    assert store.outbox_written(tenant, "stanza-3", NOW) == _row_answer(store, tenant, "stanza-3")


def test_a_rolled_back_accept_or_write_leaves_no_answer_behind(store, tenant):
    with pytest.raises(RuntimeError), store.transaction():
        store.outbox_accept(_entry(tenant, 4, attempt="xmppatt_gone"))
        store.outbox_written(tenant, "stanza-4", NOW)
        raise RuntimeError("the records' transaction fails")
    assert store.outbox_written(tenant, "stanza-4", NOW) is None, "nothing was accepted"

    store.outbox_accept(_entry(tenant, 4))
    with pytest.raises(RuntimeError), store.transaction():
        assert store.outbox_written(tenant, "stanza-4", NOW).writes == 1
        raise RuntimeError("the event's transaction fails")
    again = store.outbox_written(tenant, "stanza-4", NOW)
    assert again == _row_answer(store, tenant, "stanza-4")
    assert (again.attempt_id, again.writes) == ("xmppatt_4", 1)


def test_a_restarted_store_answers_the_same(store_factory, tenant):
    first = store_factory.open()
    first.outbox_accept(_entry(tenant, 5))
    first.outbox_accept(_entry(tenant, 6))
    expected = first.outbox_written(tenant, "stanza-5", NOW)
    restarted = store_factory.open()
    assert restarted.outbox_written(tenant, "stanza-6", NOW) == _row_answer(restarted, tenant, "stanza-6")
    assert expected == _row_answer(restarted, tenant, "stanza-5")


def test_metadata_only_answers_the_request_without_its_body(store_factory, tenant):
    store = store_factory.open(StoreOptions(metadata_only=True))
    store.outbox_accept(_entry(tenant, 7))
    written = store.outbox_written(tenant, "stanza-7", NOW)
    assert written == _row_answer(store, tenant, "stanza-7")
    assert "content" not in written.request_json
