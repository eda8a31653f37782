"""Reads that take a message besides a case or participant search the message's index (issue 17 goal 2):
SQLite, which has no statistics, cannot tell the (tenant, x, seq) indexes apart on its own. The plans are
asserted on SQLite, and on PostgreSQL with its statistics; the answers stay those of the plain filters."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from store_helpers import T0, evidence, minutes

from xmpp_connect.store import SqliteStore, audit, evidence_log
from xmpp_connect.store.cursor import encode_cursor
from xmpp_connect.store.rows import where_equal
from xmpp_connect.store.sql import SqlStore

Read = Callable[[SqlStore, str, dict[str, Any]], Any]


def _feed(store: SqlStore, tenant: str, selectors: dict[str, Any]) -> list[str]:
    """Every page of the feed with these selectors (three entries a page), as event ids."""
    ids: list[str] = []
    cursor = None
    while True:
        page = store.events_page(tenant, cursor=cursor, limit=3, include_internal=True, **selectors)
        if not page.events:
            return ids
        ids += [event.event_id for event in page.events]
        cursor = page.next_cursor


READS: dict[str, Read] = {
    "evidence_for_message": lambda store, tenant, s: [
        event.event_id
        for event in store.evidence_for_message(
            tenant, s["message_id"], participant_id=s.get("participant_id")
        )
    ],
    "events_page": lambda store, tenant, s: [
        event.event_id for event in store.events_page(tenant, **s).events
    ],
    "events_page of a type after a cursor": lambda store, tenant, s: [
        event.event_id
        for event in store.events_page(
            tenant, cursor=encode_cursor(2), event_types=["notification.endpoint.accepted"], **s
        ).events
    ],
    "events_page paged": _feed,
    "selected_rows": lambda store, tenant, s: [row["event_id"] for row in store.selected_rows(tenant, **s)],
    "selected_rows in a time window": lambda store, tenant, s: [
        row["event_id"]
        for row in store.selected_rows(
            tenant, since="2026-01-01T10:01:00Z", until="2026-01-01T10:30:00Z", **s
        )
    ],
}

WITH_A_MESSAGE = [
    ("evidence_for_message", {"participant_id": "p1"}),
    *(
        (read, selectors)
        for read in READS
        if read != "evidence_for_message"
        for selectors in (
            {"case_id": "c1"},
            {"participant_id": "p1"},
            {"case_id": "c1", "participant_id": "p1"},
        )
    ),
]


def _populate(store: SqlStore, tenant: str) -> None:
    """Messages over two cases and three participants, some with neither, some with entries in several."""
    for n in range(8):
        case = ("c1", "c2", None)[n % 3]
        participant = ("p1", "p2", None, "p1")[n % 4]
        at = T0 + minutes(n)
        store.append_evidence(
            evidence(tenant, f"m{n}", "server_acknowledged", at, case_id=case, participant_id=participant)
        )
        store.append_evidence(
            evidence(
                tenant, f"m{n}", "delivered_to_client", at + minutes(1), case_id=case, participant_id="p1"
            )
        )
        store.append_evidence(
            evidence(tenant, f"m{n % 3}", "receipt_timeout", at + minutes(20), case_id="c1")
        )


@contextmanager
def _plain_filters() -> Iterator[None]:
    """Every selector ``column = ?``, as the store wrote them before (the reference answers)."""

    def plain(tenant_id: str, message_id: str | None, **others: str | None) -> tuple[str, list[Any]]:
        return where_equal(tenant_id, **others, message_id=message_id)

    kept = evidence_log.evidence_where
    evidence_log.evidence_where = audit.evidence_where = plain
    try:
        yield
    finally:
        evidence_log.evidence_where = audit.evidence_where = kept


def _statements(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[Any]]]:
    """Every statement the store reads with from now on, with its parameters."""
    captured: list[tuple[str, list[Any]]] = []
    real = store._all

    def capture(text: str, params: Any = ()) -> Any:
        captured.append((text, list(params)))
        return real(text, params)

    monkeypatch.setattr(store, "_all", capture)
    return captured


def _sqlite_plan(store: SqlStore, statement: tuple[str, list[Any]]) -> list[str]:
    text, params = statement
    return [row["detail"] for row in store._conn().execute("EXPLAIN QUERY PLAN " + text, params)]


@pytest.mark.parametrize(("read", "selectors"), WITH_A_MESSAGE)
def test_sqlite_searches_the_message_index_whenever_a_message_is_given(
    tmp_path, monkeypatch, tenant, read, selectors
):
    store = SqliteStore(tmp_path / "store.sqlite3")
    try:
        _populate(store, tenant)
        statements = _statements(store, monkeypatch)
        READS[read](store, tenant, {"message_id": "m1", **selectors})
        for statement in statements:
            plan = _sqlite_plan(store, statement)
            assert len(plan) == 1, plan  # one search, no temporary b-tree to sort
            assert plan[0].startswith(
                "SEARCH evidence_events USING INDEX evidence_by_message (tenant_id=? AND message_id=?"
            ), plan
    finally:
        store.close()


@pytest.mark.parametrize(
    ("selectors", "index"),
    [({"case_id": "c1"}, "evidence_by_case"), ({"participant_id": "p1"}, "evidence_by_participant")],
)
def test_sqlite_without_a_message_still_searches_the_case_or_participant_index(
    tmp_path, monkeypatch, tenant, selectors, index
):
    store = SqliteStore(tmp_path / "store.sqlite3")
    try:
        _populate(store, tenant)
        statements = _statements(store, monkeypatch)
        store.events_page(tenant, **selectors)
        store.selected_rows(tenant, **selectors)
        assert len(statements) == 2
        for statement in statements:
            assert _sqlite_plan(store, statement)[0].startswith(
                f"SEARCH evidence_events USING INDEX {index} "
            )
    finally:
        store.close()


def test_answers_are_those_of_the_plain_filters(store, tenant):
    """Same rows in the same order as ``column = ?`` for every selector, on every read and combination."""
    _populate(store, tenant)
    combinations = itertools.product(
        (None, "m0", "m1", "m2", "m7", "nope"), (None, "c1", "c2", "nope"), (None, "p1", "p2", "nope")
    )
    checked = 0
    for message, case, participant in combinations:
        selectors = {"message_id": message, "case_id": case, "participant_id": participant}
        for name, read in READS.items():
            if name == "evidence_for_message":
                if message is None or case is not None:
                    continue
                chosen = {"message_id": message, "participant_id": participant}
            else:
                chosen = selectors
            answer = read(store, tenant, chosen)
            with _plain_filters():
                assert answer == read(store, tenant, chosen), (name, chosen)
            checked += bool(answer)
    assert checked > 100  # most combinations select something


@pytest.mark.parametrize("store_factory", ["postgres"], indirect=True)
def test_postgres_with_statistics_searches_the_message_index_too(store, tenant, monkeypatch):
    """A participant and case with thousands of entries, analyzed: PostgreSQL picks the message's index (as
    it did before: the rewritten selectors only take the others out of the choice)."""
    at = T0 + minutes(5)
    ack, receipt = evidence(tenant, "m", "server_acknowledged", at) + evidence(
        tenant, "m", "delivered_to_client", at
    )
    store.bulk_append(
        replace(template, event_id=f"e{n}-{kind}", message_id=f"m{n}")
        for n in range(4000)
        for kind, template in (("ack", ack), ("receipt", receipt))
    )
    store._conn().execute("ANALYZE evidence_events")
    statements = _statements(store, monkeypatch)
    for read, selectors in WITH_A_MESSAGE:
        selectors = {"case_id": "case-1", "participant_id": "participant-1"} if "case_id" in selectors else (
            {"participant_id": "participant-1"}
        )
        assert READS[read](store, tenant, {"message_id": "m1234", **selectors})
    assert len(statements) >= len(WITH_A_MESSAGE)
    for text, params in list(statements):
        plan = " ".join(row["QUERY PLAN"] for row in store._all("EXPLAIN " + text, params))
        assert "evidence_by_message" in plan, plan
        assert not re.search(r"evidence_by_(case|participant|tenant)", plan), plan
