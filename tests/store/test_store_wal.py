"""SQLite with group commit: the WAL is checkpointed by a background thread and stays bounded."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from store_helpers import T0

from xmpp_connect.store import SqliteStore
from xmpp_connect.store.records import XmppMessage
from xmpp_connect.store.wal import WalCheckpointer

THREAD_NAME = "xmpp-connect wal checkpoint"


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


def _autocheckpoint(store: SqliteStore) -> int:
    return store._conn().execute("PRAGMA wal_autocheckpoint").fetchone()[0]


def _wal_bytes(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


async def test_the_wal_stays_bounded_while_the_loop_writes_without_pause(tmp_path, monkeypatch):
    monkeypatch.setattr(WalCheckpointer, "restart_frames", 1000)
    path = tmp_path / "store.sqlite3"
    store = SqliteStore(path)
    store.enable_group_commit(asyncio.get_running_loop())
    context = {"correlation_id": "c", "note": "x" * 2048}
    messages = 16_000  # 32 MiB of tracking context alone: a WAL never started over would be larger
    largest = 0
    try:
        for batch in range(0, messages, 20):
            for n in range(batch, batch + 20):
                store.create_message(XmppMessage("t", f"m{n}", T0, tracking_context=context))
            await store.durable()
            largest = max(largest, _wal_bytes(path))
    finally:
        store.disable_group_commit()
    assert _autocheckpoint(store) == 1000, "without group commit the connection checkpoints by itself again"
    store.close()
    assert largest < 20 * 2**20, f"WAL grew to {largest / 2**20:.0f} MiB"


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
