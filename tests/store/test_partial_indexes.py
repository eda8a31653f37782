"""Migration 10 on a store that already holds sends: the outbox's open sends and the stanzas' stable ids are
indexed by partial indexes, and the reads that used the full ones give the same answers and use them."""

from __future__ import annotations

from datetime import UTC, datetime

from pg import PG_DSN

from xmpp_connect.store import PostgresStore, SqliteStore
from xmpp_connect.store.migrations import MIGRATIONS
from xmpp_connect.store.outbox import ACCEPTED, EXPIRED, OPEN_ROWS, OutboxEntry
from xmpp_connect.store.records import XmppStanza

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
REQUEST = {"action_type": "notification.send", "content": {"body": "b"}, "options": {}}


def _open(store_factory, migrate: bool):
    if store_factory.backend == "sqlite":
        store = SqliteStore(store_factory.location, migrate=migrate)
    else:
        store = PostgresStore(PG_DSN, schema=store_factory.location, migrate=migrate)
    store_factory.opened.append(store)
    return store


def _entry(tenant: str, n: int, account: str = "notify") -> OutboxEntry:
    return OutboxEntry(tenant, f"stanza-{n}", account, f"xmppmsg_{n}", f"xmppatt_{n}", ACCEPTED, REQUEST,
                       "b", NOW)


def _stanza(tenant: str, n: int, stable_id: str | None) -> XmppStanza:
    ref = f"stanza-{n}"
    return XmppStanza(tenant, ref, "outbound", "message", "notify@example.net", "room@muc.example.net",
                      stanza_id=ref, origin_id=ref, stable_id=stable_id, message_id=f"xmppmsg_{n}")


def _sends(store, tenant: str, numbers: range) -> None:
    """Sends in every outbox state, and their stanzas (every third with a stable id)."""
    for n in numbers:
        store.outbox_accept(_entry(tenant, n, account="notify" if n % 4 else "other"))
        store.record_stanza(_stanza(tenant, n, f"stable-{n}" if n % 3 == 0 else None))
        if n % 5 >= 1:
            store.outbox_written(tenant, f"stanza-{n}", NOW)
        if n % 5 == 2:
            store.outbox_acked(tenant, f"stanza-{n}", NOW)
        if n % 5 == 3:
            store.outbox_end(tenant, f"stanza-{n}", EXPIRED, "hold_bound_passed")
    store.outbox_new_attempt(tenant, "stanza-4", "xmppatt_4.2")


def _answers(store, tenant: str, numbers: range) -> tuple[object, ...]:
    return (
        [(e.stanza_id, e.state, e.seq) for e in store.outbox_open("notify")],
        [(e.stanza_id, e.state, e.seq) for e in store.outbox_open("other")],
        [store.find_outbound(tenant, stable_id=f"stable-{n}") for n in numbers],
        [store.find_outbound(tenant, stanza_id=f"stanza-{n}", stable_id=f"stanza-{n}") for n in numbers],
    )


def test_migration_10_keeps_every_answer_on_existing_sends(store_factory, tenant):
    before = _open(store_factory, migrate=False)
    assert before.migrate(MIGRATIONS[:9]) == list(range(1, 10))
    _sends(before, tenant, range(1, 31))
    answers = _answers(before, tenant, range(1, 31))
    assert answers[0] and answers[1], "both accounts have open sends"
    assert sum(1 for found in answers[2] if found) == 10

    after = _open(store_factory, migrate=True)
    assert after.schema_version() == 10
    assert _answers(after, tenant, range(1, 31)) == answers
    _sends(after, tenant, range(31, 61))
    more = _answers(after, tenant, range(31, 61))
    assert more[0][-1][0] != answers[0][-1][0], "sends after the migration are open too"
    assert sum(1 for found in more[2] if found) == 10


def test_the_reads_use_the_partial_indexes(store_factory, tenant):
    store = _open(store_factory, migrate=True)
    conn = store._conn()
    outbox = f"SELECT * FROM outbox WHERE account_ref = ? AND {OPEN_ROWS} ORDER BY seq LIMIT ?"
    stanzas = "SELECT * FROM stanzas WHERE tenant_id = ? AND stable_id = ?"
    if store_factory.backend == "sqlite":
        plan = conn.execute(f"EXPLAIN QUERY PLAN {outbox}", ("notify", 10)).fetchall()
        assert [row[3] for row in plan] == ["SEARCH outbox USING INDEX outbox_open (account_ref=?)"]
        plan = conn.execute(f"EXPLAIN QUERY PLAN {stanzas}", (tenant, "s")).fetchall()
        assert "USING INDEX stanzas_by_stable_id" in plan[0][3]
        return
    conn.execute("SET enable_seqscan = off")
    for query, params, index in ((outbox, ("notify", 10), "outbox_open"),
                                 (stanzas, (tenant, "s"), "stanzas_by_stable_id")):
        plan = conn.execute(f"EXPLAIN {query.replace('?', '%s')}", params).fetchall()
        assert index in " ".join(row["QUERY PLAN"] for row in plan), plan
    conn.execute("RESET enable_seqscan")
