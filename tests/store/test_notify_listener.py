"""The outbox listener (store/notify_listener.py) on a real PostgreSQL: an accepted send wakes it with the
accepted entry, and after its connection is killed it connects again, says so, and is woken again."""

from __future__ import annotations

import json
import queue
from datetime import UTC, datetime

import psycopg
import pytest
from pg import PG_DSN

from xmpp_connect.store.notify_listener import NotifyListener
from xmpp_connect.store.outbox import ACCEPTED, OutboxEntry

pytestmark = pytest.mark.postgres
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
WAIT = 30.0


def accept(store, tenant: str, n: int, account: str) -> None:
    store.outbox_accept(OutboxEntry(tenant, f"stanza-{n}", account, f"xmppmsg_{n}", f"xmppatt_{n}", ACCEPTED,
                                    {"action_type": "notification.send"}, "body", NOW))


@pytest.mark.parametrize("store_factory", ["postgres"], indirect=True)
def test_the_listener_is_woken_and_survives_a_killed_connection(store_factory, tenant):
    store = store_factory.open()
    woken: queue.Queue[str] = queue.Queue()
    connects: queue.Queue[int] = queue.Queue()
    name = f"xc-listen-{tenant}"

    def connect() -> psycopg.Connection:
        conn = store.connect_listener()
        conn.execute("SELECT set_config('application_name', %s, false)", (name,))
        return conn

    listener = NotifyListener(connect, store.outbox_channel, woken.put, lambda: connects.put(1))
    listener.start()
    try:
        connects.get(timeout=WAIT)
        accept(store, tenant, 1, "notify")
        assert json.loads(woken.get(timeout=WAIT)) == ["notify", tenant, "stanza-1"]
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            killed = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                   " WHERE application_name = %s", (name,)).fetchall()
        assert killed == [(True,)]
        connects.get(timeout=WAIT)
        accept(store, tenant, 2, "other")
        assert json.loads(woken.get(timeout=WAIT)) == ["other", tenant, "stanza-2"]
    finally:
        listener.stop()
