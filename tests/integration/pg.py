"""The test PostgreSQL (127.0.0.1:5432, trust auth, database ``test``): its DSN and throwaway schemas."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

PG_DSN = os.environ.get(
    "XMPP_CONNECT_TEST_PG_DSN", "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=3"
)


def require_postgres() -> None:
    """Fail under CI=true when PostgreSQL is unreachable (those tests must run there); skip elsewhere."""
    try:
        psycopg.connect(PG_DSN).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL required under CI=true but unreachable: {type(exc).__name__}")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 not reachable")


def fresh_schema(prefix: str) -> Iterator[str]:
    """A new schema named ``prefix`` + random hex for the duration of a fixture; dropped afterwards."""
    require_postgres()
    schema = prefix + secrets.token_hex(4)
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    yield schema
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
