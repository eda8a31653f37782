"""LISTEN on a dedicated PostgreSQL connection: the outbox's NOTIFY wakes an account's owner replica.

A thread of its own blocks on the connection; each notification's payload (an account ref) is handed to
``wake``. After a lost connection it connects again and calls ``reconnected`` (a notification sent while it
was away is lost, so the owner looks at its outbox once).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)
POLL_S = 0.5
"""How long one wait for notifications lasts before the thread checks whether it should stop."""
RETRY_S = 1.0


class NotifyListener:
    """One LISTEN connection on one channel, in a daemon thread, until ``stop()``."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        channel: str,
        wake: Callable[[str], object],
        reconnected: Callable[[], object],
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._wake = wake
        self._reconnected = reconnected
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="xmpp-connect listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=POLL_S * 4)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    self._reconnected()
                    while not self._stop.is_set():
                        for notification in conn.notifies(timeout=POLL_S):
                            self._wake(notification.payload)
            except psycopg.Error as exc:
                log.warning("outbox listener lost its connection (%s); connecting again", type(exc).__name__)
                self._stop.wait(RETRY_S)
