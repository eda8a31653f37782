"""The core's intake loop (intake_dispatch.py) over a real intake file and a real SQLite evidence store:
order, the stored position, and retries that skip nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from xmpp_connect.sending.intake import Intake, IntakeItem, Queued
from xmpp_connect.sending.intake_dispatch import IntakeDispatcher, Wakes
from xmpp_connect.store.sqlite import SqliteStore

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
WAIT = 5.0


def queue(intake: Intake, *keys: str) -> None:
    for key in keys:
        claim = intake.claim("t", key, "h", f"xmppop_{key}", NOW, Queued(f'{{"key": "{key}"}}', NOW, "{}"))
        assert claim.fresh


@asynccontextmanager
async def running(dispatcher: IntakeDispatcher) -> AsyncIterator[None]:
    """The dispatcher's loop as a task for the block, stopped and awaited after it."""
    task = asyncio.create_task(dispatcher.run())
    try:
        yield
    finally:
        dispatcher.stop()
        await asyncio.wait_for(task, WAIT)


async def reached(store: SqliteStore, intake: Intake, position: int) -> None:
    """Until the stored intake position is at least ``position`` (bounded by ``WAIT``)."""
    async with asyncio.timeout(WAIT):
        while store.intake_position(intake.instance_id) < position:
            await asyncio.sleep(0.01)


async def test_carried_out_in_order_and_the_position_is_kept(tmp_path: Path) -> None:
    intake, store = Intake(tmp_path / "intake.sqlite3"), SqliteStore(tmp_path / "store.sqlite3")
    queue(intake, "a", "b", "c")
    done: list[str] = []

    async def perform(item: IntakeItem) -> None:
        done.append(item.request["key"])

    dispatcher = IntakeDispatcher(intake, store, perform)
    assert await dispatcher.carry_out(intake.items_after(dispatcher.position)) is True
    assert done == ["a", "b", "c"]
    assert store.intake_position(intake.instance_id) == 3
    assert IntakeDispatcher(intake, store, perform).position == 3, "a restarted core resumes after c"
    intake.close()
    store.close()


async def test_a_failure_keeps_the_failed_request_and_those_after_it(tmp_path: Path) -> None:
    """b fails once: the position stops before it; the loop retries b and c (c again: a replay) and then
    moves past both."""
    intake, store = Intake(tmp_path / "intake.sqlite3"), SqliteStore(tmp_path / "store.sqlite3")
    queue(intake, "a", "b", "c")
    attempts: list[str] = []

    async def perform(item: IntakeItem) -> None:
        attempts.append(item.request["key"])
        if attempts.count("b") == 1 and item.request["key"] == "b":
            raise OSError("store briefly unavailable")

    async with running(IntakeDispatcher(intake, store, perform, retry_after=0.01, idle_poll=0.01)):
        await reached(store, intake, 3)
    assert attempts[:3] == ["a", "b", "c"] and attempts[3:] == ["b", "c"]
    intake.close()
    store.close()


def test_an_item_carries_the_workers_hash_and_one_queued_before_the_column_has_none(tmp_path: Path) -> None:
    """The intake keeps the hash a worker claimed the key with beside its queued request, so the core need
    not hash the request again; a file written before that column gains it, its queued rows without one."""
    path = tmp_path / "intake.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE intake_items (seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL,"
            " operation_id TEXT NOT NULL, request TEXT NOT NULL, received_at TEXT NOT NULL)"
        )
        old.execute("INSERT INTO intake_items (tenant_id, operation_id, request, received_at) VALUES"
                    " ('t', 'xmppop_old', '{\"key\": \"old\"}', ?)", (NOW.isoformat(),))
    old.close()
    intake = Intake(path)
    queue(intake, "new")
    items = intake.items_after(0)
    assert [(i.operation_id, i.request, i.payload_hash) for i in items] == [
        ("xmppop_old", {"key": "old"}, None), ("xmppop_new", {"key": "new"}, "h")
    ]
    assert intake.pending("t", "xmppop_new", 0) == items[1]
    intake.close()
    again = Intake(path)
    assert again.items_after(0) == items, "opened again: the column is there once"
    again.close()


async def test_an_idle_core_waits_for_a_workers_wake_instead_of_reading_the_queue(tmp_path: Path) -> None:
    """Once the core finds the intake empty (and nothing queued ``idle_poll`` later) it stops reading it and
    waits on its wake socket; a request queued and announced with ``notify()`` (as a worker does after
    committing) is carried out long before the core would read the queue again on its own (``wake_poll``,
    an hour here)."""
    intake, store = Intake(tmp_path / "intake.sqlite3"), SqliteStore(tmp_path / "store.sqlite3")
    worker = Intake(tmp_path / "intake.sqlite3")
    assert worker.wake_address == intake.wake_address, "the same file: the same wake socket"
    assert Intake(tmp_path / "other.sqlite3").wake_address != intake.wake_address
    reads: list[int] = []
    items_after = intake.items_after

    def counted(seq: int, limit: int = 200) -> list[IntakeItem]:
        reads.append(seq)
        return items_after(seq, limit)

    intake.items_after = counted  # type: ignore[method-assign]
    done: list[str] = []

    async def perform(item: IntakeItem) -> None:
        done.append(item.request["key"])

    async with running(IntakeDispatcher(intake, store, perform, idle_poll=0.001, wake_poll=3600.0)):
        async with asyncio.timeout(WAIT):
            while not reads:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        idle_reads = len(reads)
        await asyncio.sleep(0.1)
        assert len(reads) == idle_reads, "waiting for a wake, not reading the queue"
        queue(worker, "a")
        worker.notify()
        await reached(store, intake, 1)
    assert done == ["a"]
    worker.close()
    intake.close()
    store.close()


async def test_without_its_wake_socket_the_core_reads_the_queue_every_idle_poll(tmp_path: Path) -> None:
    """The wake socket taken (by another listener here): the core reads the queue every ``idle_poll`` as
    before, so a request queued without a wake is carried out all the same."""
    intake, store = Intake(tmp_path / "intake.sqlite3"), SqliteStore(tmp_path / "store.sqlite3")
    taken = Wakes.listen(intake.wake_address)
    assert taken is not None
    done: list[str] = []

    async def perform(item: IntakeItem) -> None:
        done.append(item.request["key"])

    async with running(IntakeDispatcher(intake, store, perform, idle_poll=0.001, wake_poll=3600.0)):
        await asyncio.sleep(0.05)
        queue(intake, "a")
        await reached(store, intake, 1)
    assert done == ["a"]
    taken.close()
    intake.close()
    store.close()


async def test_stop_ends_a_core_waiting_for_a_wake(tmp_path: Path) -> None:
    """``stop()`` does not wait for a worker's wake (nor for ``wake_poll``, an hour here)."""
    intake, store = Intake(tmp_path / "intake.sqlite3"), SqliteStore(tmp_path / "store.sqlite3")

    async def perform(item: IntakeItem) -> None:
        raise AssertionError("nothing queued")

    async with running(IntakeDispatcher(intake, store, perform, idle_poll=0.001, wake_poll=3600.0)):
        await asyncio.sleep(0.05)
    intake.close()
    store.close()
