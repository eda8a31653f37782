"""Dead letters: unprocessable events kept with the reason, listable (§29)."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from typing import Any

from xmpp_connect.store.connection import SqlBase, log
from xmpp_connect.store.errors import InvalidCursor
from xmpp_connect.store.records import (
    DEAD_LETTER_STAGES,
    DeadLetter,
    DeadLetterPage,
)
from xmpp_connect.store.rows import check_allowed, to_json
from xmpp_connect.store.timestamps import from_text, to_text


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
        """Dead letters oldest first; ``cursor`` is the opaque ``next_cursor`` of the previous page
        (InvalidCursor for one this store did not issue)."""
        params: list[Any] = [tenant_id]
        where = "tenant_id = ?"
        if cursor:
            created, letter_id = _decode(cursor)
            where += " AND (created_at > ? OR (created_at = ? AND dead_letter_id > ?))"
            params += [created, created, letter_id]
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
        return DeadLetterPage(letters, _encode(last["created_at"], last["dead_letter_id"]) if last else None)


_PREFIX = "dl1|"


def _encode(created_at: str, dead_letter_id: str) -> str:
    text = f"{_PREFIX}{created_at}|{dead_letter_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[str, str]:
    """(created_at, dead_letter_id) of the last letter of the previous page."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursor("malformed cursor") from exc
    created, _, letter_id = text.removeprefix(_PREFIX).partition("|")
    if not text.startswith(_PREFIX) or not letter_id.startswith("dl_"):
        raise InvalidCursor("malformed cursor")
    return created, letter_id
