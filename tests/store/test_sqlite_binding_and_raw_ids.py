"""The SQLite store's parameter binding (NULL through a registered adapter) and raw stanza ids cut from
blocks of random bytes: the stored values are what they were before either."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime

from xmpp_connect.store import SqliteStore
from xmpp_connect.store.raw_events import new_raw_event_id


def test_none_binds_as_null_through_the_registered_adapter(tmp_path):
    store = SqliteStore(tmp_path / "binding.sqlite3")
    assert (type(None), sqlite3.PrepareProtocol) in sqlite3.adapters
    ref = store.record_raw("t", "stream", "<message xmlns='jabber:client' id='m'/>", datetime.now(UTC))
    row = store._one(
        "SELECT typeof(storage_ref) AS kind, storage_ref IS NULL AS is_null, typeof(purged_at) AS purged"
        " FROM raw_events WHERE raw_event_id = ?",
        (ref.raw_event_id,),
    )
    assert row is not None and (row["kind"], row["is_null"], row["purged"]) == ("null", 1, "null")
    conn = sqlite3.connect(":memory:")
    assert conn.execute("SELECT ? IS NULL, typeof(?)", (None, None)).fetchone() == (1, "null")
    store.close()


def test_raw_ids_across_random_blocks_are_distinct_and_well_formed():
    ids = [new_raw_event_id() for _ in range(2_000)]  # several blocks of 256
    assert all(re.fullmatch(r"raw_[0-9a-f]{32}", raw_id) for raw_id in ids)
    assert len(set(ids)) == len(ids)
    assert len({raw_id[16:] for raw_id in ids}) == len(ids), "the random parts repeat"
