"""Dead letters: unprocessable events kept with the reason, listable (§29)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from xmpp_connect.store.connection import SqlBase, log
from xmpp_connect.store.errors import InvalidCursor, NotFound
from xmpp_connect.store.records import (
    DEAD_LETTER_STAGES,
    DeadLetter,
    DeadLetterPage,
)
from xmpp_connect.store.rows import check_allowed, to_json
from xmpp_connect.store.timestamps import from_text, to_text

CURSOR = re.compile(r"dl_[0-9a-f]{32}")
"""A dead-letter listing cursor: the id of the last letter of the previous page."""


class DeadLetters(SqlBase):
    """Nothing dropped: what could not be parsed, correlated or classified."""

    def add_dead_letter(
        self,
        tenant_id: str,
        stage: str,
        reason: str,
        detail: Mapping[str, Any] | None = None,
        raw_ref: str | None = None,
    ) -> DeadLetter:
        """Keep an unprocessable event with the reason; ``stage`` is parse | correlate | classify | map."""
        check_allowed(stage, DEAD_LETTER_STAGES, "dead-letter stage")
        letter = DeadLetter(
            tenant_id,
            "dl_" + uuid.uuid4().hex,
            stage,
            reason,
            self.options.clock(),
            dict(detail or {}),
            raw_ref,
        )
        with self._write() as conn:
            self._exec(
                conn,
                "INSERT INTO dead_letters (tenant_id, dead_letter_id, stage, reason, detail,"
                " raw_ref, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    tenant_id,
                    letter.dead_letter_id,
                    stage,
                    reason,
                    to_json(letter.detail),
                    raw_ref,
                    to_text(letter.created_at),
                ),
            )
        log.warning("dead letter stage=%s reason=%s id=%s", stage, reason, letter.dead_letter_id)
        return letter

    def list_dead_letters(
        self, tenant_id: str, cursor: str | None = None, limit: int = 100
    ) -> DeadLetterPage:
        """Dead letters oldest first; ``cursor`` is the ``next_cursor`` of the previous page, the id of its
        last letter (InvalidCursor for a malformed one, NotFound for an id no letter of the tenant has)."""
        params: list[Any] = [tenant_id]
        where = "tenant_id = ?"
        if cursor:
            if not CURSOR.fullmatch(cursor):
                raise InvalidCursor("malformed cursor")
            found = self._one(
                "SELECT created_at FROM dead_letters WHERE tenant_id = ? AND dead_letter_id = ?",
                [tenant_id, cursor],
            )
            if found is None:
                raise NotFound("no dead letter of this tenant has that id")
            where += " AND (created_at > ? OR (created_at = ? AND dead_letter_id > ?))"
            params += [found["created_at"], found["created_at"], cursor]
        rows = self._all(
            f"SELECT * FROM dead_letters WHERE {where} ORDER BY created_at, dead_letter_id LIMIT ?",
            [*params, limit],
        )
        letters = tuple(
            DeadLetter(
                row["tenant_id"],
                row["dead_letter_id"],
                row["stage"],
                row["reason"],
                from_text(row["created_at"]),
                json.loads(row["detail"]),
                row["raw_ref"],
            )
            for row in rows
        )
        last = rows[-1] if len(rows) == limit else None
        return DeadLetterPage(letters, last["dead_letter_id"] if last else None)
