"""Anonymizing a participant's evidence (§28) without breaking the evidence chain (spec/audit.md)."""

from __future__ import annotations

import hashlib
import json

from xmpp_connect.model.anonymize import Pseudonyms
from xmpp_connect.store.connection import SqlBase, log


class Erasure(SqlBase):
    """The chain covers only a salted digest of an entry's personal columns, so they can be replaced."""

    def anonymize_participant(self, tenant_id: str, participant_id: str) -> int:
        """Replace the participant id and every JID in the fact and dedupe key of the participant's
        evidence with pseudonyms and drop the salt: the digest stays, so the entries still verify.
        Returns the number of entries changed."""
        pseudonym = "anon-" + hashlib.sha256(f"{tenant_id}\0{participant_id}".encode()).hexdigest()[:16]
        names = Pseudonyms(domain=pseudonym + ".anon.invalid")
        count = 0
        with self._write() as conn:
            rows = self._exec(
                conn,
                "SELECT event_id, dedupe_key, fact, sender_jid FROM evidence_events"
                " WHERE tenant_id = ? AND participant_id = ?",
                (tenant_id, participant_id),
            ).fetchall()
            for row in rows:
                fact = json.dumps(names.value(json.loads(row["fact"])), sort_keys=True)
                dedupe = names.text(row["dedupe_key"]) if row["dedupe_key"] else None
                sender = names.text(row["sender_jid"]) if row["sender_jid"] else None
                self._exec(
                    conn,
                    "UPDATE evidence_events SET participant_id = ?, dedupe_key = ?, fact = ?, sender_jid = ?,"
                    " personal_salt = NULL WHERE tenant_id = ? AND event_id = ?",
                    (pseudonym, dedupe, fact, sender, tenant_id, row["event_id"]),
                )
                count += 1
        log.info("participant anonymized tenant=%s entries=%d", tenant_id, count)
        return count
