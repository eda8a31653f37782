"""The outbox table (spec/outbox.md) on SQLite and PostgreSQL: states only move forward, an end is final,
open sends come back in acceptance order per account, and metadata-only mode keeps no body."""

from __future__ import annotations

from datetime import UTC, datetime

from xmpp_connect.store import StoreOptions
from xmpp_connect.store.outbox import ACCEPTED, EXPIRED, SERVER_ACKED, UNKNOWN, WRITTEN, OutboxEntry

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
REQUEST = {"action_type": "notification.send", "content": {"body": "secret body"}, "options": {}}


def entry(tenant: str, n: int, account: str = "notify") -> OutboxEntry:
    return OutboxEntry(tenant, f"stanza-{n}", account, f"xmppmsg_{n}", f"xmppatt_{n}", ACCEPTED, REQUEST,
                       "secret body", NOW)


def test_states_move_forward_only_and_an_end_is_final(store, tenant):
    stored = store.outbox_accept(entry(tenant, 1))
    assert stored.state == ACCEPTED and stored.seq > 0 and stored.body == "secret body"
    assert store.outbox_accept(entry(tenant, 1)).seq == stored.seq, "accepting again keeps the first"
    written = store.outbox_written(tenant, "stanza-1", NOW)
    assert written is not None and written.state == WRITTEN and written.writes == 1
    assert store.outbox_written(tenant, "stanza-1", NOW) is None, "written once per attempt"
    assert store.outbox_acked(tenant, "stanza-1", NOW) is True
    assert store.outbox_entry(tenant, "stanza-1").state == SERVER_ACKED
    assert store.outbox_end(tenant, "stanza-1", UNKNOWN, "late") is False, "acked is an end"
    assert store.outbox_written(tenant, "stanza-1", NOW) is None

    store.outbox_accept(entry(tenant, 2))
    assert store.outbox_end(tenant, "stanza-2", EXPIRED, "hold_bound_passed") is True
    assert store.outbox_acked(tenant, "stanza-2", NOW) is False, "an expired send stays expired"
    assert store.outbox_entry(tenant, "stanza-2").state == EXPIRED


def test_open_sends_per_account_in_acceptance_order(store, tenant):
    for n in (3, 1, 2):
        store.outbox_accept(entry(tenant, n))
    store.outbox_accept(entry(tenant, 9, account="other"))
    store.outbox_written(tenant, "stanza-1", NOW)
    store.outbox_accept(entry(tenant, 4))
    store.outbox_written(tenant, "stanza-4", NOW)
    store.outbox_acked(tenant, "stanza-4", NOW)
    assert [e.stanza_id for e in store.outbox_open("notify")] == ["stanza-3", "stanza-1", "stanza-2"]
    store.outbox_new_attempt(tenant, "stanza-1", "xmppatt_1.2")
    again = store.outbox_entry(tenant, "stanza-1")
    assert again.state == ACCEPTED and again.attempt_id == "xmppatt_1.2" and again.writes == 1


def test_a_send_without_stream_management_ends_written(store, tenant):
    store.outbox_accept(entry(tenant, 5))
    store.outbox_written(tenant, "stanza-5", NOW)
    assert store.outbox_end(tenant, "stanza-5", WRITTEN, "no_stream_management") is True
    assert store.outbox_open("notify") == []
    assert store.outbox_entry(tenant, "stanza-5").state == WRITTEN


def test_metadata_only_keeps_no_body(store_factory, tenant):
    store = store_factory.open(StoreOptions(metadata_only=True))
    stored = store.outbox_accept(entry(tenant, 6))
    assert stored.body is None and "content" not in stored.request and not stored.resendable
    assert store.outbox_entry(tenant, "stanza-6").body is None


def test_a_hand_over_time_is_kept_until_the_next_attempt(store, tenant):
    """at_most_once sends record their hand-over before it (spec/replicas.md): a later owner finding the
    row still accepted with a hand-over time ends it instead of writing it again."""
    store.outbox_accept(entry(tenant, 7))
    assert store.outbox_entry(tenant, "stanza-7").handed_at is None
    store.outbox_handing(tenant, "stanza-7", NOW)
    handed = store.outbox_entry(tenant, "stanza-7")
    assert handed.state == ACCEPTED and handed.handed_at == NOW
    store.outbox_written(tenant, "stanza-7", NOW)
    store.outbox_new_attempt(tenant, "stanza-7", "xmppatt_7.2")
    assert store.outbox_entry(tenant, "stanza-7").handed_at is None, "a new attempt is handed over anew"
