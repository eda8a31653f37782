"""WAL checkpoints off the event loop: a thread with its own connection copies the WAL into the database.

With group commit the loop's connection writes almost all the time; SQLite's auto-checkpoint would run on
it, inside a COMMIT, with the loop waiting. sqlite3 releases the GIL while a checkpoint runs, so here it
uses another core instead.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger("xmpp_connect.store")


class WalCheckpointer:
    """Copies the WAL into the database every ``interval`` seconds until ``stop()``.

    ``PASSIVE`` checkpoints never wait for the writer nor block it, but alone they never let SQLite start
    the WAL over, which it does when a write transaction begins with every frame already copied: a pass
    always overlaps an open batch, whose frames are uncopied when it commits, and the next batch begins
    right after. So once the WAL is longer than ``restart_frames``, the thread asks the writer for the
    tail: ``after_commit()``, called by the writer after its COMMIT, copies the frames the thread has not
    (a PASSIVE checkpoint on the writer's connection, a few ms), and the writer's next transaction starts
    the WAL over. The file stays near ``restart_frames`` pages plus what one interval appends."""

    interval = 2.0
    """Seconds between checkpoints. A page written again and again (the counters, the indexes' right
    edges, the newest table pages) is copied once per checkpoint: at 0.5 s instead of 0.1 s the thread's
    CPU per send about halved (bench/README.md, ninth round), at 2 s instead of 0.5 s it falls by another
    ~40% at the service's rate (twelfth round), and the WAL grows by what two seconds append beyond
    ``restart_frames``."""
    restart_frames = 4000
    """WAL length (pages, 4 KiB each) from which the writer is asked for the tail: each time costs the
    loop a few ms, so not too often; SQLite's own auto-checkpoint starts at 1000."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._tail_wanted = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="xmpp-connect wal checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the checkpoint under way (if any); returns once the thread has ended."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def after_commit(self, conn: sqlite3.Connection) -> None:
        """On the writer's thread, between its COMMIT and its next BEGIN: copy the tail when asked to (a
        failure is only logged: the commit before it stands)."""
        if self._tail_wanted.is_set():
            self._tail_wanted.clear()
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:
                log.warning("WAL checkpoint after commit failed (%s): will try again", exc)

    def _run(self) -> None:
        conn = self._connect()
        try:
            while not self._stopping.wait(self.interval):
                self.checkpoint(conn)
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        """One PASSIVE checkpoint; a long WAL gets a second one (the frames appended during the first),
        then the writer is asked for the rest."""
        try:
            _, wal_frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if wal_frames > self.restart_frames:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self._tail_wanted.set()
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint failed (%s): will try again", exc)
