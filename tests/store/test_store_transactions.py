"""One transaction per action, group commit per loop iteration, and the outbound lookups they serve."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3

import psycopg
import pytest
from store_helpers import T0, evidence, minutes

from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.store import batch_log
from xmpp_connect.store.errors import TransactionMisuse
from xmpp_connect.store.group_commit import CommitBatch
from xmpp_connect.store.outbound import StoreOutboundIndex
from xmpp_connect.store.records import XmppMessage, XmppStanza

ACCOUNT = "adapter@example.org/xc"


def _message(tenant: str, message_id: str) -> XmppMessage:
    return XmppMessage(tenant, message_id, T0, case_id="case-1", tracking_context={"correlation_id": "c"})


def _stanza(tenant: str, ref: str, direction: str = "outbound", **kw) -> XmppStanza:
    return XmppStanza(tenant, ref, direction, "message", ACCOUNT, "bob@example.net", stanza_id=ref, **kw)


def test_nested_writes_join_one_transaction_committed_at_the_end(store_factory, tenant):
    writer, reader = store_factory.open(), store_factory.open()
    with writer.transaction():
        writer.create_message(_message(tenant, "m1"))
        writer.record_stanza(_stanza(tenant, "s1", message_id="m1"))
        assert writer.get_message(tenant, "m1") is not None, "the transaction reads its own writes"
        assert reader.get_message(tenant, "m1") is None, "nothing is visible before the commit"
    assert reader.get_message(tenant, "m1").case_id == "case-1"
    assert [s.stanza_ref for s in reader.list_stanzas(tenant, "m1")] == ["s1"]


def test_a_failed_nested_call_undoes_only_its_own_writes(store, tenant):
    with store.transaction():
        store.create_message(_message(tenant, "m1"))
        with pytest.raises((sqlite3.IntegrityError, psycopg.errors.UniqueViolation)):
            store.create_message(_message(tenant, "m1"))
        store.create_message(_message(tenant, "m2"))
    assert [m.message_id for m in store.list_messages(tenant)] == ["m1", "m2"]


def test_failed_blocks_among_siblings_and_nested_ones_undo_only_their_own_writes(store, tenant):
    with store.transaction():
        store.create_message(_message(tenant, "m1"))
        with pytest.raises((sqlite3.IntegrityError, psycopg.errors.UniqueViolation)):
            store.create_message(_message(tenant, "m1"))
        with store.transaction():
            store.create_message(_message(tenant, "m2"))
            with pytest.raises(RuntimeError), store.transaction():
                store.create_message(_message(tenant, "m3"))
                store.create_message(_message(tenant, "m4"))
                raise RuntimeError("the inner block failed")
            store.create_message(_message(tenant, "m5"))
        with pytest.raises((sqlite3.IntegrityError, psycopg.errors.UniqueViolation)):
            store.create_message(_message(tenant, "m2"))
        store.create_message(_message(tenant, "m6"))
    assert [m.message_id for m in store.list_messages(tenant)] == ["m1", "m2", "m5", "m6"]


def test_an_error_leaving_the_transaction_rolls_everything_back(store, tenant):
    with pytest.raises(RuntimeError), store.transaction():
        store.create_message(_message(tenant, "m1"))
        store.claim_operation(tenant, "key-1", "hash")
        raise RuntimeError("the action failed")
    assert store.get_message(tenant, "m1") is None
    assert store.claim_operation(tenant, "key-1", "hash").replayed is False


async def test_a_transaction_held_across_an_await_is_refused(store, tenant):
    opened = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        with store.transaction():
            store.create_message(_message(tenant, "m1"))
            opened.set()
            await release.wait()

    task = asyncio.create_task(holder())
    await opened.wait()
    with pytest.raises(TransactionMisuse):
        store.create_message(_message(tenant, "m2"))
    release.set()
    await task
    assert store.get_message(tenant, "m1") is not None and store.get_message(tenant, "m2") is None


async def test_a_transaction_held_across_an_await_is_refused_to_a_plain_callback(store, tenant):
    """The owner check asks the scope's loop for its running task: a loop callback (no task) making a store
    call while a task holds a transaction open is refused, as another task is."""
    opened = asyncio.Event()
    release = asyncio.Event()
    refused: list[BaseException] = []

    async def holder() -> None:
        with store.transaction():
            store.create_message(_message(tenant, "m1"))
            opened.set()
            await release.wait()

    def intruder() -> None:
        try:
            store.create_message(_message(tenant, "m2"))
        except TransactionMisuse as exc:
            refused.append(exc)
        release.set()

    task = asyncio.create_task(holder())
    await opened.wait()
    asyncio.get_running_loop().call_soon(intruder)
    await task
    assert len(refused) == 1
    assert store.get_message(tenant, "m1") is not None and store.get_message(tenant, "m2") is None


async def test_a_transaction_opened_in_a_callback_admits_its_own_calls(store, tenant):
    """A scope opened outside any task (a loop callback, as slixmpp's handlers run) takes nested store calls
    and reads inside it."""
    done = asyncio.Event()

    def callback() -> None:
        with store.transaction():
            store.create_message(_message(tenant, "m1"))
            assert store.get_message(tenant, "m1") is not None
            store.create_message(_message(tenant, "m2"))
        done.set()

    asyncio.get_running_loop().call_soon(callback)
    await done.wait()
    assert {m.message_id for m in store.list_messages(tenant)} == {"m1", "m2"}


async def test_group_commit_makes_one_iterations_writes_durable_together(store_factory, tenant):
    writer, reader = store_factory.open(), store_factory.open()
    writer.enable_group_commit(asyncio.get_running_loop())
    try:
        writer.create_message(_message(tenant, "m1"))
        with writer.transaction():
            writer.create_message(_message(tenant, "m2"))
        assert reader.get_message(tenant, "m1") is None, "the batch is still open"
        await writer.durable()
        assert {m.message_id for m in reader.list_messages(tenant)} == {"m1", "m2"}
    finally:
        writer.disable_group_commit()


async def test_group_commit_reads_outside_a_write_commit_the_batch_first(store_factory, tenant):
    writer, reader = store_factory.open(), store_factory.open()
    writer.enable_group_commit(asyncio.get_running_loop())
    try:
        writer.create_message(_message(tenant, "m1"))
        assert writer.get_message(tenant, "m1") is not None
        assert reader.get_message(tenant, "m1") is not None, "the read committed the open batch"
    finally:
        writer.disable_group_commit()


async def test_group_commit_is_per_loop_thread(store_factory, tenant):
    writer, reader = store_factory.open(), store_factory.open()
    writer.enable_group_commit(asyncio.get_running_loop())
    try:
        await asyncio.to_thread(writer.create_message, _message(tenant, "m1"))
        assert reader.get_message(tenant, "m1") is not None, "another thread commits per call"
    finally:
        writer.disable_group_commit()


async def test_a_failed_group_commit_reaches_every_waiter_and_rolls_back():
    calls: list[str] = []

    def fail() -> None:
        raise OSError("disk full")

    batch = CommitBatch(asyncio.get_running_loop(), lambda: calls.append("begin"), fail,
                        lambda: calls.append("rollback"))

    async def write_then_acknowledge() -> None:
        batch.join()
        await batch.durable()

    results = await asyncio.gather(write_then_acknowledge(), write_then_acknowledge(), return_exceptions=True)
    assert [type(r) for r in results] == [OSError, OSError]
    assert calls == ["begin", "rollback"] and not batch.is_open


async def test_batched_feed_positions_never_repeat_across_batches_and_other_writers(store_factory, tenant):
    writer, other = store_factory.open(), store_factory.open()
    writer.enable_group_commit(asyncio.get_running_loop())
    try:
        stored = list(writer.append_evidence(evidence(tenant, "m1", "server_acknowledged", T0)).stored)
        with pytest.raises(RuntimeError), writer.transaction():
            writer.append_evidence(evidence(tenant, "m2", "server_acknowledged", T0))
            raise RuntimeError("this request failed, the rest of its batch stays")
        stored += writer.append_evidence(evidence(tenant, "m3", "server_acknowledged", T0)).stored
        await writer.durable()
        stored += other.append_evidence(evidence(tenant, "m4", "server_acknowledged", T0)).stored
        stored += writer.append_evidence(evidence(tenant, "m5", "server_acknowledged", T0)).stored
        await writer.durable()
    finally:
        writer.disable_group_commit()
    seqs = [e.seq for e in stored]
    assert seqs == sorted(set(seqs)), "positions only grow, across batches and writers"
    feed = other.events_page(tenant).events
    assert [e.message_id for e in feed] == ["m1", "m3", "m4", "m5"]
    assert [(e.message_id, e.seq) for e in feed] == [(e.message_id, e.seq) for e in stored]


async def test_a_failed_group_commit_drops_its_batch_positions(store_factory, tenant, monkeypatch):
    writer, other = store_factory.open(), store_factory.open()
    writer.enable_group_commit(asyncio.get_running_loop())
    real_exec = writer._exec

    def failing_commit(conn, sql, params=()):
        if sql == "COMMIT":
            raise OSError("disk full")
        return real_exec(conn, sql, params)

    try:
        writer.append_evidence(evidence(tenant, "m1", "server_acknowledged", T0))
        monkeypatch.setattr(writer, "_exec", failing_commit)
        with pytest.raises(OSError):
            await writer.durable()
        monkeypatch.setattr(writer, "_exec", real_exec)
        for message_id in ("m2", "m3"):
            other.append_evidence(evidence(tenant, message_id, "server_acknowledged", T0))
        writer.append_evidence(evidence(tenant, "m4", "server_acknowledged", T0))
        await writer.durable()
    finally:
        writer.disable_group_commit()
    feed = other.events_page(tenant).events
    assert [e.message_id for e in feed] == ["m2", "m3", "m4"]
    assert [e.seq for e in feed] == sorted({e.seq for e in feed})


async def test_a_failed_part_of_a_batch_undoes_only_its_own_writes(store_factory, tenant):
    writer, reader = store_factory.open(), store_factory.open()
    writer.enable_group_commit(asyncio.get_running_loop())
    try:
        with writer.transaction():
            writer.create_message(_message(tenant, "m1"))
            stored = list(writer.append_evidence(evidence(tenant, "m1", "server_acknowledged", T0)).stored)
            writer.claim_operation(tenant, "key-1", "hash")
        with pytest.raises(RuntimeError), writer.transaction():
            writer.create_message(_message(tenant, "m2"))
            writer.append_evidence(evidence(tenant, "m2", "server_acknowledged", T0))
            writer.complete_operation(tenant, "key-1", {"accepted": True})
            raise RuntimeError("this native event's handling failed")
        with writer.transaction():
            writer.create_message(_message(tenant, "m3"))
            with pytest.raises(RuntimeError), writer.transaction():
                writer.create_message(_message(tenant, "m4"))
                raise RuntimeError("a nested block failed")
            with pytest.raises((sqlite3.IntegrityError, psycopg.errors.UniqueViolation)):
                writer.create_message(_message(tenant, "m1"))
            stored += writer.append_evidence(evidence(tenant, "m3", "server_acknowledged", T0)).stored
        writer.create_message(_message(tenant, "m5"))
        assert reader.get_message(tenant, "m1") is None, "the batch is still open"
        await writer.durable()
    finally:
        writer.disable_group_commit()
    assert [m.message_id for m in reader.list_messages(tenant)] == ["m1", "m3", "m5"]
    assert [(e.message_id, e.seq) for e in reader.events_page(tenant).events] == [
        (e.message_id, e.seq) for e in stored
    ]
    assert reader.claim_operation(tenant, "key-1", "hash").result is None, "its completion was undone"
    assert reader.verify_chain(tenant).ok


_VERSIONS = itertools.count()
"""A data version that changes at every read: as if another connection committed each time."""


@pytest.mark.parametrize("store_factory", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "diverging",
    [
        pytest.param(("answer_of", lambda cursor, returning: "a different answer"), id="answered-otherwise"),
        pytest.param(("data_version", lambda conn: next(_VERSIONS)), id="another-writer-in-between"),
    ],
)
async def test_a_batch_that_cannot_be_restored_after_a_failed_part_fails_at_its_commit(
    store_factory, tenant, monkeypatch, diverging
):
    """SQLite undoes a failed part of a batch by rolling the batch back and running its earlier writes
    again; should one of them answer differently, or another connection have committed in between, the
    batch is not committed half-restored: a later part's statements fail at once (its feed positions
    and memories describe rows that are gone), its commit fails, every waiter hears it, the next batch
    starts clean. (PostgreSQL undoes a failed part with its savepoint.)"""
    writer, reader = store_factory.open(), store_factory.open()
    writer.enable_group_commit(asyncio.get_running_loop())
    try:
        writer.create_message(_message(tenant, "m1"))
        monkeypatch.setattr(batch_log, *diverging)
        with pytest.raises(RuntimeError), writer.transaction():
            writer.create_message(_message(tenant, "m2"))
            raise RuntimeError("this part failed")
        monkeypatch.undo()
        with pytest.raises(batch_log.ReplayDiverged), writer.transaction():
            writer.append_evidence(evidence(tenant, "m1", "server_acknowledged", T0))
        with pytest.raises(batch_log.ReplayDiverged):
            await writer.durable()
        writer.create_message(_message(tenant, "m3"))
        await writer.durable()
    finally:
        writer.disable_group_commit()
    assert [m.message_id for m in reader.list_messages(tenant)] == ["m3"]


def test_outbound_lookup_merges_id_columns_and_ignores_inbound(store, tenant):
    store.record_stanza(_stanza(tenant, "s1", origin_id="o1", sent_at=T0))
    store.record_stanza(_stanza(tenant, "s2", origin_id="s1", sent_at=T0 + minutes(1)))
    store.record_stanza(_stanza(tenant, "in1", direction="inbound", origin_id="s1"))

    found = store.find_outbound(tenant, stanza_id="s1", origin_id="s1", stable_id="s1")
    assert [r.stanza_id for r in found] == ["s1", "s2"], "each outbound stanza once, in send order"


def test_outbound_index_remembers_a_stable_id_and_finds_by_it(store_factory, tenant):
    index = StoreOutboundIndex(store_factory.open(), tenant, ACCOUNT)
    index.record(OutboundRecord("s1", "room@conference.example.org", "muc_room_jid", "groupchat", sent_at=T0))

    updated = index.set_stable_id("s1", "room-id-7")
    assert updated is not None and updated.stable_id == "room-id-7"
    assert index.set_stable_id("unknown", "x") is None
    restarted = StoreOutboundIndex(store_factory.open(), tenant, ACCOUNT)
    assert restarted.lookup("room-id-7").stanza_id == "s1"
    assert restarted.lookup("s1").stable_id == "room-id-7"
