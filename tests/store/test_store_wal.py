"""SQLite with group commit: the WAL is checkpointed by a background thread and started over.

The checkpointer is driven by hand here (its thread idle), so each test sees one order of events: how far
the WAL grows while the thread races a writer depends on scheduling, and is a figure in ``bench/wal.py``.
Whether SQLite started the WAL over shows in the file's header: its checkpoint sequence number goes up by
one each time (https://www.sqlite.org/fileformat2.html#walformat).
"""

from __future__ import annotations

import asyncio
import struct
import threading
import time
from pathlib import Path

from store_helpers import T0

from xmpp_connect.store import SqliteStore
from xmpp_connect.store.records import XmppMessage
from xmpp_connect.store.wal import WalCheckpointer

THREAD_NAME = "xmpp-connect wal checkpoint"
RESTART_FRAMES = 200
CONTEXT = {"correlation_id": "c", "note": "x" * 2048}
"""Every message's tracking context needs a page of its own, so a batch of 20 adds 20 frames or more."""


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


def _autocheckpoint(store: SqliteStore) -> int:
    return store._conn().execute("PRAGMA wal_autocheckpoint").fetchone()[0]


def _wal(path: Path) -> Path:
    return Path(f"{path}-wal")


def _wal_generation(path: Path) -> int:
    """The WAL header's checkpoint sequence number: one more each time SQLite started the WAL over."""
    header = _wal(path).read_bytes()[:32]
    magic, _version, _page_size, sequence = struct.unpack(">IIII", header[:16])
    assert magic in (0x377F0682, 0x377F0683), "not a WAL header"
    return sequence


class _Writer:
    """Writes batches of messages through the store's group commit, each ``write()`` its own batch."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.count = 0

    def stage(self, messages: int = 20) -> None:
        """Writes into the open batch (opening it), without committing."""
        for _ in range(messages):
            self.count += 1
            self.store.create_message(XmppMessage("t", f"m{self.count}", T0, tracking_context=CONTEXT))

    async def write(self, messages: int = 20) -> None:
        self.stage(messages)
        await self.store.durable()


def _driven_store(path: Path, monkeypatch, restart_frames: int) -> tuple[SqliteStore, WalCheckpointer]:
    """A store with group commit whose checkpoint thread never runs a pass by itself: the test calls
    ``checkpoint()`` instead, from a connection of its own as the thread would."""
    monkeypatch.setattr(WalCheckpointer, "interval", 3600.0)
    monkeypatch.setattr(WalCheckpointer, "restart_frames", restart_frames)
    store = SqliteStore(path)
    store.enable_group_commit(asyncio.get_running_loop())
    assert store._checkpointer is not None
    return store, store._checkpointer[0]


def _pass(checkpointer: WalCheckpointer, store: SqliteStore) -> None:
    """One pass of the thread, run here on a connection of its own."""
    conn = store._connect()
    try:
        checkpointer.checkpoint(conn)
    finally:
        conn.close()


async def _grow_past(writer: _Writer, path: Path, frames: int) -> None:
    """Write until the WAL holds more than ``frames`` pages (nothing checkpoints meanwhile)."""
    page = 4096 + 24
    for _ in range(1000):
        await writer.write()
        if (_wal(path).stat().st_size - 32) // page > frames:
            return
    raise AssertionError(f"the WAL never held {frames} frames")


async def test_a_long_wal_gets_its_tail_copied_by_the_writer_and_starts_over(tmp_path, monkeypatch):
    """A checkpoint pass always overlaps an open batch, whose frames land after it. Once the WAL is longer
    than ``restart_frames``, the pass asks the writer for that tail; the writer copies it right after its
    COMMIT, and its next transaction writes the WAL from the start again instead of growing the file."""
    path = tmp_path / "store.sqlite3"
    store, checkpointer = _driven_store(path, monkeypatch, RESTART_FRAMES)
    writer = _Writer(store)
    try:
        await _grow_past(writer, path, RESTART_FRAMES)
        generation = _wal_generation(path)

        writer.stage()  # the batch is open: its frames are not in the WAL yet
        _pass(checkpointer, store)
        await store.durable()  # COMMIT appends the batch's frames, then after_commit() copies them
        assert _wal_generation(path) == generation, "the open batch committed onto the WAL"
        size = _wal(path).stat().st_size

        await writer.write()
        assert _wal_generation(path) == generation + 1, "the first batch after the tail was copied restarts"
        for _ in range(3):
            await writer.write()
        assert _wal(path).stat().st_size == size, "the WAL is rewritten from its start, not grown"
        assert _wal_generation(path) == generation + 1
    finally:
        store.close()


async def test_a_short_wal_is_left_to_the_thread(tmp_path, monkeypatch):
    """Below ``restart_frames`` the writer is not asked for anything: a pass that overlapped a batch leaves
    that batch's frames uncopied, so the next batch appends to the WAL rather than starting it over (the
    thread's next pass, between batches, will)."""
    path = tmp_path / "store.sqlite3"
    store, checkpointer = _driven_store(path, monkeypatch, 10**9)
    writer = _Writer(store)
    try:
        await _grow_past(writer, path, RESTART_FRAMES)
        generation = _wal_generation(path)

        writer.stage()
        _pass(checkpointer, store)
        await store.durable()
        size = _wal(path).stat().st_size
        await writer.write()
        assert _wal_generation(path) == generation, "without the tail copied the WAL cannot start over"
        assert _wal(path).stat().st_size > size, "the batch was appended"

        _pass(checkpointer, store)  # a pass between batches copies everything
        await writer.write()
        assert _wal_generation(path) == generation + 1, "a pass between batches lets the next one restart"
    finally:
        store.close()


async def test_the_thread_checkpoints_and_the_wal_starts_over_once_the_writer_yields(tmp_path, monkeypatch):
    """The real thread, at its own pace: while the loop writes and yields between batches, it copies the
    WAL into the database and the WAL is started over. Bounded by a generous deadline, not a duration."""
    monkeypatch.setattr(WalCheckpointer, "restart_frames", RESTART_FRAMES)
    path = tmp_path / "store.sqlite3"
    store = SqliteStore(path)
    store.enable_group_commit(asyncio.get_running_loop())
    writer = _Writer(store)
    try:
        await writer.write()
        generation = _wal_generation(path)
        deadline = time.monotonic() + 120
        while _wal_generation(path) == generation:
            assert time.monotonic() < deadline, "the checkpoint thread never let the WAL start over in 120 s"
            await asyncio.sleep(0.05)
            await writer.write(1)
    finally:
        store.disable_group_commit()
    assert _autocheckpoint(store) == 1000, "without group commit the connection checkpoints by itself again"
    store.close()


async def test_close_stops_the_checkpoint_thread(tmp_path):
    store = SqliteStore(tmp_path / "store.sqlite3")
    store.enable_group_commit(asyncio.get_running_loop())
    assert _autocheckpoint(store) == 0, "the loop's connection leaves checkpoints to the thread"
    assert len(_checkpoint_threads()) == 1
    store.create_message(XmppMessage("t", "m1", T0, tracking_context={}))
    store.close()
    assert _checkpoint_threads() == []
    reopened = SqliteStore(tmp_path / "store.sqlite3")
    assert reopened.get_message("t", "m1") is not None, "close() committed the open batch"
    reopened.close()
