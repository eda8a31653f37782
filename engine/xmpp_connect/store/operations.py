"""Idempotent operations (§29, §36.3): one key, one operation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from xmpp_connect.store import idempotency
from xmpp_connect.store.connection import SqlBase, log
from xmpp_connect.store.errors import IdempotencyConflict, NotFound
from xmpp_connect.store.plain_json import ascii_json
from xmpp_connect.store.records import (
    IdempotentOperation,
)
from xmpp_connect.store.timestamps import from_text, to_text


class IdempotentOperations(SqlBase):
    """The idempotency table."""

    def claim_operation(
        self, tenant_id: str, idempotency_key: str, payload_hash: str, operation_id: str | None = None
    ) -> IdempotentOperation:
        """The one operation for this key. First use: ``replayed=False`` (go ahead and send), with
        ``operation_id`` (the one an API worker answered) or else one made now. Same key and payload again,
        also from another replica or after a restart: ``replayed=True`` with the stored ids and result. Same
        key, other payload: IdempotencyConflict."""
        clock = self.options.clock()
        now = to_text(clock)
        op_id = operation_id or idempotency.operation_id(tenant_id, idempotency_key, clock)
        stanza = idempotency.stanza_id(tenant_id, idempotency_key, op_id)
        with self._write() as conn:
            inserted = self._exec(
                conn,
                "INSERT INTO idempotency (tenant_id, idempotency_key, payload_hash, operation_id, stanza_id,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING operation_id",
                (tenant_id, idempotency_key, payload_hash, op_id, stanza, now),
            ).fetchone()
        if inserted is not None:
            return IdempotentOperation(
                tenant_id, idempotency_key, payload_hash, op_id, stanza, from_text(now), replayed=False
            )
        row = self._one(
            "SELECT * FROM idempotency WHERE tenant_id = ? AND idempotency_key = ?",
            (tenant_id, idempotency_key),
        )
        assert row is not None
        if row["payload_hash"] != payload_hash:
            log.info("idempotency conflict operation_id=%s", row["operation_id"])
            raise IdempotencyConflict(idempotency_key)
        return IdempotentOperation(
            tenant_id,
            idempotency_key,
            payload_hash,
            row["operation_id"],
            row["stanza_id"],
            from_text(row["created_at"]),
            replayed=inserted is None,
            result=json.loads(row["result"]) if row["result"] is not None else None,
        )

    def new_operation(
        self, tenant_id: str, idempotency_key: str, payload_hash: str, operation_id: str | None = None
    ) -> IdempotentOperation:
        """The operation a first use of this key makes (ids as ``claim_operation`` makes them), not stored:
        ``claim_completed_operation`` stores it with its result, or finds the key claimed before."""
        clock = self.options.clock()
        op_id = operation_id or idempotency.operation_id(tenant_id, idempotency_key, clock)
        stanza = idempotency.stanza_id(tenant_id, idempotency_key, op_id)
        return IdempotentOperation(
            tenant_id, idempotency_key, payload_hash, op_id, stanza, from_text(to_text(clock)), replayed=False
        )

    def claim_completed_operation(self, operation: IdempotentOperation, result: Mapping[str, Any]) -> bool:
        """Claim a ``new_operation`` with its result in one statement (in the caller's transaction with the
        send's records); False, storing nothing, when the key was claimed before (then ``claim_operation``
        says by what)."""
        with self._write() as conn:
            inserted: int = self._exec(
                conn,
                "INSERT INTO idempotency (tenant_id, idempotency_key, payload_hash, operation_id, stanza_id,"
                " created_at, result, completed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (
                    operation.tenant_id,
                    operation.idempotency_key,
                    operation.payload_hash,
                    operation.operation_id,
                    operation.stanza_id,
                    to_text(operation.created_at),
                    ascii_json(result),
                    to_text(self.options.clock()),
                ),
            ).rowcount
        return inserted > 0

    def complete_operation(self, tenant_id: str, idempotency_key: str, result: Mapping[str, Any]) -> None:
        """Store the operation's result, returned to every later replay of the key (first result wins)."""
        with self._write() as conn:
            row = self._exec(
                conn,
                "UPDATE idempotency SET result = COALESCE(result, ?), completed_at ="
                " COALESCE(completed_at, ?)"
                " WHERE tenant_id = ? AND idempotency_key = ? RETURNING operation_id",
                (ascii_json(result), to_text(self.options.clock()), tenant_id, idempotency_key),
            ).fetchone()
        if row is None:
            raise NotFound("idempotency key")

    def operation_known(self, tenant_id: str, idempotency_key: str) -> bool:
        """Whether ``idempotency_key`` was claimed here (an API worker leaves such a request to the core)."""
        row = self._one(
            "SELECT 1 AS known FROM idempotency WHERE tenant_id = ? AND idempotency_key = ?",
            (tenant_id, idempotency_key),
        )
        return row is not None

    def operation_completed(self, tenant_id: str, idempotency_key: str) -> bool:
        """Whether the operation of ``idempotency_key`` was carried out here (its result is stored)."""
        row = self._one(
            "SELECT 1 AS done FROM idempotency WHERE tenant_id = ? AND idempotency_key = ?"
            " AND result IS NOT NULL",
            (tenant_id, idempotency_key),
        )
        return row is not None
