"""WAL growth under group commit: how large the SQLite WAL gets while the loop writes without pause.

The checkpoint thread (xmpp_connect.store.wal) races the writer, so the figure depends on scheduling and
on the machine's load; the suite only checks the mechanism (tests/store/test_store_wal.py), this prints
the figure. Each batch is 20 messages with a 2 KiB tracking context (a page each), committed with one
``await store.durable()`` and no other pause, as a busy loop would.

    .venv/bin/python bench/wal.py [--messages 16000] [--restart-frames 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from xmpp_connect.store import SqliteStore
from xmpp_connect.store.records import XmppMessage
from xmpp_connect.store.wal import WalCheckpointer

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CONTEXT = {"correlation_id": "c", "note": "x" * 2048}
BATCH = 20
MIB = 2**20


def wal_state(path: Path) -> tuple[int, int]:
    """(WAL file size in bytes, checkpoint sequence number from its header: +1 per restart)."""
    wal = Path(f"{path}-wal")
    if not wal.exists():
        return 0, 0
    with wal.open("rb") as f:
        header = f.read(16)
    sequence = struct.unpack(">I", header[12:16])[0] if len(header) == 16 else 0
    return wal.stat().st_size, sequence


async def one_run(directory: Path, messages: int) -> dict[str, float]:
    path = directory / "store.sqlite3"
    store = SqliteStore(path)
    store.enable_group_commit(asyncio.get_running_loop())
    largest = 0
    first_sequence: int | None = None
    sequence = 0
    started = time.perf_counter()
    try:
        for batch in range(0, messages, BATCH):
            for n in range(batch, batch + BATCH):
                store.create_message(XmppMessage("t", f"m{n}", T0, tracking_context=CONTEXT))
            await store.durable()
            size, sequence = wal_state(path)
            largest = max(largest, size)
            if first_sequence is None:
                first_sequence = sequence
    finally:
        store.disable_group_commit()
        store.close()
    seconds = time.perf_counter() - started
    return {
        "largest_mib": largest / MIB,
        "restarts": sequence - (first_sequence or 0),
        "messages_per_s": messages / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=16_000)
    parser.add_argument("--restart-frames", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    WalCheckpointer.restart_frames = args.restart_frames
    print(
        f"messages={args.messages} ({args.messages * len(CONTEXT['note']) / MIB:.0f} MiB of context) "
        f"batch={BATCH} restart_frames={args.restart_frames} interval={WalCheckpointer.interval}s"
    )
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as directory:
            figures = asyncio.run(one_run(Path(directory), args.messages))
        print(
            f"run {run}: largest WAL {figures['largest_mib']:.1f} MiB, "
            f"{figures['restarts']:.0f} restarts, {figures['messages_per_s']:.0f} messages/s"
        )


if __name__ == "__main__":
    main()
