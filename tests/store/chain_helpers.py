"""Direct database access for the chain tests: they tamper with rows behind the store's back."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import psycopg
from pg import PG_DSN
from psycopg import sql
from store_helpers import T0, evidence, minutes


def tamper(factory: Any, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
    """Run SQL (``?`` placeholders) directly on the factory's database, in one transaction."""
    if factory.backend == "sqlite":
        conn = sqlite3.connect(factory.location)
        with conn:
            for text, params in statements:
                conn.execute(text, tuple(params))
        conn.close()
        return
    with psycopg.connect(PG_DSN) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(factory.location)))
        for text, params in statements:
            conn.execute(text.replace("?", "%s"), tuple(params))


def append_log(store: Any, tenant: str, messages: int = 5) -> list[str]:
    """Appends two entries (server ack, receipt) per message; returns the event ids in log order."""
    ids: list[str] = []
    for n in range(messages):
        for offset, scenario in enumerate(("server_acknowledged", "delivered_to_client")):
            events = evidence(
                tenant,
                f"m{n}",
                scenario,
                T0 + minutes(n) + minutes(offset / 10),
                sender=f"bob{n}@example.net/phone",
                stanza_id=f"s{n}",
                participant_id=f"participant-{n % 2}",
                from_jid=f"bob{n}@example.net/phone",
            )
            ids.extend(e.event_id for e in store.append_evidence(events).stored)
    return ids
