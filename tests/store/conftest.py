"""Store fixtures: every store test runs on SQLite and on PostgreSQL.

PostgreSQL runs whenever 127.0.0.1:5432 answers (database ``test``, trust auth); each test gets a fresh
schema under a random per-session prefix, all dropped at the end. Unreachable: the PostgreSQL params skip,
except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from pg import PG_DSN, require_postgres
from psycopg import sql

from xmpp_connect.store import PostgresStore, SqliteStore, StoreOptions
from xmpp_connect.store.sql import SqlStore


@dataclass
class StoreFactory:
    """Opens store objects on one database; a second ``open()`` is a restart (a fresh object, same data)."""

    backend: str
    location: str
    opened: list[SqlStore] = field(default_factory=list)

    def open(self, options: StoreOptions | None = None) -> SqlStore:
        store: SqlStore
        if self.backend == "sqlite":
            store = SqliteStore(self.location, options)
        else:
            store = PostgresStore(PG_DSN, options, schema=self.location)
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture(scope="session")
def pg_schema_prefix() -> Iterator[str]:
    """A random prefix for this session's schemas; every schema with it is dropped at the end."""
    require_postgres()
    prefix = "xc_test_" + secrets.token_hex(4)
    yield prefix
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (prefix,)
        ).fetchall()
        for (name,) in rows:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    if request.param == "sqlite":
        factory = StoreFactory("sqlite", str(tmp_path / "store.sqlite3"))
    else:
        prefix = request.getfixturevalue("pg_schema_prefix")
        schema = f"{prefix}_{secrets.token_hex(4)}"
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        factory = StoreFactory("postgres", schema)
    yield factory
    factory.close_all()


@pytest.fixture
def store(store_factory: StoreFactory) -> SqlStore:
    return store_factory.open()


@pytest.fixture
def tenant() -> str:
    return "tenant-" + secrets.token_hex(3)
