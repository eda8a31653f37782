"""The event feed: stable order, opaque cursor, filters; nothing skipped or repeated under concurrent
writers."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from pg import PG_DSN
from store_helpers import T0, evidence, minutes

from xmpp_connect.store import InvalidCursor, PostgresStore, SqliteStore


def _page_all(store, tenant, **filters) -> list[str]:
    ids, cursor = [], None
    while True:
        page = store.events_page(tenant, cursor=cursor, limit=3, **filters)
        ids += [e.event_id for e in page.events]
        if not page.events:
            return ids
        cursor = page.next_cursor


def test_pages_follow_append_order_and_resume_from_cursor(store, tenant):
    appended = []
    for i in range(7):
        appended += [
            e.event_id
            for e in store.append_evidence(evidence(tenant, f"m{i}", "server_acknowledged", T0)).stored
        ]
    first = store.events_page(tenant, limit=4)
    second = store.events_page(tenant, cursor=first.next_cursor, limit=4)
    assert [e.event_id for e in first.events + second.events] == appended
    empty = store.events_page(tenant, cursor=second.next_cursor)
    assert empty.events == () and empty.next_cursor == second.next_cursor
    store.append_evidence(evidence(tenant, "m9", "server_acknowledged", T0))
    assert [e.message_id for e in store.events_page(tenant, cursor=empty.next_cursor).events] == ["m9"]


def test_filters_by_case_participant_message_and_type(store, tenant):
    store.append_evidence(
        evidence(tenant, "m1", "server_acknowledged", T0, case_id="c1", participant_id="p1")
    )
    store.append_evidence(
        evidence(tenant, "m2", "delivered_to_client", T0, case_id="c1", participant_id="p2")
    )
    store.append_evidence(
        evidence(tenant, "m3", "server_acknowledged", T0, case_id="c2", participant_id="p1")
    )
    store.append_evidence(evidence(tenant, "m3", "receipt_timeout", T0 + minutes(5), case_id="c2"))

    def messages(**filters: Any) -> list[str]:
        return [e.message_id for e in store.events_page(tenant, **filters).events]

    assert messages(case_id="c1") == ["m1", "m2"]
    assert messages(participant_id="p1") == ["m1", "m3"]
    assert messages(message_id="m3") == ["m3"]
    assert messages(event_types=["notification.endpoint.accepted"]) == ["m2"]
    assert messages(case_id="c2", include_internal=True) == ["m3", "m3"]
    assert messages(case_id="c1", participant_id="p2") == ["m2"]


def test_a_foreign_or_garbled_cursor_is_rejected(store, tenant):
    for bad in ("not-a-cursor", "djE6eHl6", "%%%"):
        with pytest.raises(InvalidCursor):
            store.events_page(tenant, cursor=bad)


class _SlowCommitSqlite(SqliteStore):
    def _before_commit(self, conn: Any) -> None:
        time.sleep(random.uniform(0, 0.004))


class _SlowCommitPostgres(PostgresStore):
    def _before_commit(self, conn: Any) -> None:
        time.sleep(random.uniform(0, 0.004))


def test_paging_while_writers_append_skips_and_repeats_nothing(store_factory, tenant):
    """Four writers (two store objects, as two replicas, two threads each) append while a reader pages.
    Commits are delayed at random after the feed position is taken, to provoke out-of-order visibility."""
    slow = _SlowCommitSqlite if store_factory.backend == "sqlite" else _SlowCommitPostgres
    location = store_factory.location
    replicas = [
        slow(location) if store_factory.backend == "sqlite" else slow(PG_DSN, schema=location)
        for _ in range(2)
    ]
    reader = store_factory.open()
    per_writer = 60
    written: list[str] = []
    lock = threading.Lock()

    def write(replica: Any, writer: int) -> None:
        for i in range(per_writer):
            stored = replica.append_evidence(
                evidence(tenant, f"w{writer}-m{i}", "server_acknowledged", T0)
            ).stored
            with lock:
                written.extend(e.event_id for e in stored)

    threads = [threading.Thread(target=write, args=(replicas[w % 2], w)) for w in range(4)]
    for thread in threads:
        thread.start()
    seen: list[str] = []
    cursor = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        finished = not any(t.is_alive() for t in threads)
        page = reader.events_page(tenant, cursor=cursor, limit=5)
        seen += [e.event_id for e in page.events]
        cursor = page.next_cursor
        if finished and not page.events:
            break
    for thread in threads:
        thread.join(timeout=10)
    for replica in replicas:
        replica.close()

    assert len(written) == 4 * per_writer
    assert len(seen) == len(set(seen)), "an event was repeated"
    assert set(seen) == set(written), "an event was skipped"
