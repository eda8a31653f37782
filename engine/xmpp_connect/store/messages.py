"""Messages, attempts and stanzas (§9), and the outbound lookups correlation needs."""

from __future__ import annotations

from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.store.connection import STANZA_ORDER, SqlBase
from xmpp_connect.store.errors import NotFound
from xmpp_connect.store.records import (
    ATTEMPT_STATES,
    ENDPOINT_TYPES,
    XmppAttempt,
    XmppMessage,
    XmppStanza,
)
from xmpp_connect.store.rows import (
    attempt_from_row,
    check_allowed,
    message_from_row,
    outbound_from_row,
    stanza_from_row,
    to_json,
    where_equal,
)
from xmpp_connect.store.timestamps import to_text, to_text_or_none
from xmpp_connect.xmpp import jids

OUTBOUND_COLUMNS = (
    "stanza_ref, direction, send_seq, stanza_id, to_jid, endpoint_type, message_type, origin_id, stable_id,"
    " message_id, attempt_id, receipt_requested, markable, sent_at"
)
"""What ``find_outbound`` reads of a stanza row: ``outbound_from_row``'s columns, the direction and order."""


class MessageRecords(SqlBase):
    """Messages, attempts, stanzas; outbound stanzas by id, origin-id, stable id, conversation."""

    def create_message(self, message: XmppMessage) -> None:
        """Insert the message; what a read of it returns is remembered (the evidence about it reads it)."""
        row = {
            "tenant_id": message.tenant_id,
            "message_id": message.message_id,
            "case_id": message.case_id,
            "participant_id": message.participant_id,
            "purpose": message.purpose,
            "body_ref": message.body_ref,
            "template_ref": message.template_ref,
            "tracking_context": to_json(message.tracking_context),
            "created_at": to_text(message.created_at),
        }
        with self._write() as conn:
            self._exec(
                conn,
                "INSERT INTO messages (tenant_id, message_id, case_id, participant_id, purpose, body_ref,"
                " template_ref, tracking_context, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                tuple(row.values()),
            )
        self._known_messages.put((message.tenant_id, message.message_id), message_from_row(row))

    def get_message(self, tenant_id: str, message_id: str) -> XmppMessage | None:
        """The message; one read lately is not read again (a message row never changes once written)."""
        key = (tenant_id, message_id)
        known = self._known_messages.get(key)
        if known is not None:
            self._read_conn()  # as a read does: outside a write scope, an open batch commits first
            return known
        row = self._one("SELECT * FROM messages WHERE tenant_id = ? AND message_id = ?", key)
        if row is None:
            return None
        message = message_from_row(row)
        self._known_messages.put(key, message)
        return message

    def list_messages(
        self,
        tenant_id: str,
        *,
        case_id: str | None = None,
        participant_id: str | None = None,
        limit: int = 100,
    ) -> list[XmppMessage]:
        """Messages of a case or participant (or all), oldest first."""
        where, params = where_equal(tenant_id, case_id=case_id, participant_id=participant_id)
        rows = self._all(
            f"SELECT * FROM messages WHERE {where} ORDER BY created_at, message_id LIMIT ?", [*params, limit]
        )
        return [message_from_row(row) for row in rows]

    def create_attempt(self, attempt: XmppAttempt, state_event_id: str | None = None) -> None:
        """Insert the attempt; with ``state_event_id``, its state is the one that evidence (already
        appended) decides, set now as ``set_attempt_state`` would set it (``updated_at`` is the time)."""
        check_allowed(attempt.state, ATTEMPT_STATES, "attempt state")
        check_allowed(attempt.to_endpoint_type, ENDPOINT_TYPES, "endpoint type")
        updated_at = attempt.updated_at if state_event_id is None else self.options.clock()
        with self._write() as conn:
            self._exec(
                conn,
                "INSERT INTO attempts (tenant_id, attempt_id, message_id, account_ref, server_ref, from_jid,"
                " to_jid, to_endpoint_type, message_type, stanza_id, origin_id, server_id, state, created_at,"
                " updated_at, expected_evidence, state_event_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    attempt.tenant_id,
                    attempt.attempt_id,
                    attempt.message_id,
                    attempt.account_ref,
                    attempt.server_ref,
                    attempt.from_jid,
                    attempt.to_jid,
                    attempt.to_endpoint_type,
                    attempt.message_type,
                    attempt.stanza_id,
                    attempt.origin_id,
                    attempt.server_id,
                    attempt.state,
                    to_text(attempt.created_at),
                    to_text(updated_at),
                    None if attempt.expected_evidence is None else to_json(list(attempt.expected_evidence)),
                    state_event_id,
                ),
            )

    def get_attempt(self, tenant_id: str, attempt_id: str) -> XmppAttempt | None:
        row = self._one(
            "SELECT * FROM attempts WHERE tenant_id = ? AND attempt_id = ?", (tenant_id, attempt_id)
        )
        return attempt_from_row(row) if row else None

    def list_attempts(self, tenant_id: str, message_id: str) -> list[XmppAttempt]:
        rows = self._all(
            "SELECT * FROM attempts WHERE tenant_id = ? AND message_id = ? ORDER BY created_at, attempt_id",
            (tenant_id, message_id),
        )
        return [attempt_from_row(row) for row in rows]

    def update_attempt(
        self,
        tenant_id: str,
        attempt_id: str,
        *,
        state: str | None = None,
        stanza_id: str | None = None,
        origin_id: str | None = None,
        server_id: str | None = None,
    ) -> XmppAttempt:
        """Set the attempt's state or learned ids (None leaves a field as it is)."""
        if state is not None:
            check_allowed(state, ATTEMPT_STATES, "attempt state")
        with self._write() as conn:
            row = self._exec(
                conn,
                "UPDATE attempts SET state = COALESCE(?, state), stanza_id = COALESCE(?, stanza_id),"
                " origin_id = COALESCE(?, origin_id), server_id = COALESCE(?, server_id), updated_at = ?"
                " WHERE tenant_id = ? AND attempt_id = ? RETURNING *",
                (
                    state,
                    stanza_id,
                    origin_id,
                    server_id,
                    to_text(self.options.clock()),
                    tenant_id,
                    attempt_id,
                ),
            ).fetchone()
        if row is None:
            raise NotFound(f"attempt {attempt_id}")
        return attempt_from_row(row)

    def attempt_state_event(self, tenant_id: str, attempt_id: str) -> tuple[str, str | None] | None:
        """The attempt's state and the id of the evidence that decided it (None: no evidence did yet)."""
        row = self._one(
            "SELECT state, state_event_id FROM attempts WHERE tenant_id = ? AND attempt_id = ?",
            (tenant_id, attempt_id),
        )
        return (row["state"], row["state_event_id"]) if row else None

    def set_attempt_state(
        self, tenant_id: str, attempt_id: str, state: str, event_id: str, replacing: str | None
    ) -> bool:
        """Set the attempt's state as the evidence ``event_id`` decides it, only while the deciding event is
        still ``replacing`` (None: none yet); False when another writer moved it first. The count of rows
        changed says which (no row returned and fetched)."""
        check_allowed(state, ATTEMPT_STATES, "attempt state")
        with self._write() as conn:
            changed = self._exec(
                conn,
                "UPDATE attempts SET state = ?, state_event_id = ?, updated_at = ?"
                " WHERE tenant_id = ? AND attempt_id = ? AND COALESCE(state_event_id, '') = ?",
                (state, event_id, to_text(self.options.clock()), tenant_id, attempt_id, replacing or ""),
            ).rowcount
        return bool(changed > 0)

    def stanza_recorded_lately(self, tenant_id: str, stanza_ref: str) -> bool:
        """Whether this store recorded the stanza lately (its memory only: False says nothing), so that a
        caller can skip building the record ``record_stanza`` would skip anyway."""
        return bool(self._recorded_stanzas.get((tenant_id, stanza_ref)))

    def record_stanza(self, stanza: XmppStanza) -> None:
        """Record a sent or received stanza; its position in send order is kept for cumulative markers.
        Recording the same stanza ref again is a no-op (not even a statement when it was recorded lately)."""
        key = (stanza.tenant_id, stanza.stanza_ref)
        if self._recorded_stanzas.get(key):
            return
        with self._write() as conn:
            self._exec(
                conn,
                "INSERT INTO stanzas (tenant_id, stanza_ref, send_seq, direction, stanza_type, message_type,"
                " endpoint_type, stanza_id, origin_id, stable_id, from_jid, to_jid, from_bare, to_bare,"
                " message_id, attempt_id, receipt_requested, markable, payload_ref, sent_at, received_at,"
                " raw_ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant_id, stanza_ref) DO NOTHING",
                (
                    stanza.tenant_id,
                    stanza.stanza_ref,
                    self._reserve_positions(conn, 1, STANZA_ORDER),
                    stanza.direction,
                    stanza.stanza_type,
                    stanza.message_type,
                    stanza.endpoint_type,
                    stanza.stanza_id,
                    stanza.origin_id,
                    stanza.stable_id,
                    stanza.from_jid,
                    stanza.to_jid,
                    jids.bare(stanza.from_jid),
                    jids.bare(stanza.to_jid),
                    stanza.message_id,
                    stanza.attempt_id,
                    int(stanza.receipt_requested),
                    int(stanza.markable),
                    stanza.payload_ref,
                    to_text_or_none(stanza.sent_at),
                    to_text_or_none(stanza.received_at),
                    stanza.raw_ref,
                ),
            )
        self._recorded_stanzas.put(key, True)

    def set_stable_id(self, tenant_id: str, stanza_ref: str, stable_id: str) -> None:
        """Remember the server-assigned XEP-0359 stanza-id of a stanza."""
        with self._write() as conn:
            self._exec(
                conn,
                "UPDATE stanzas SET stable_id = ? WHERE tenant_id = ? AND stanza_ref = ?",
                (stable_id, tenant_id, stanza_ref),
            )

    def list_stanzas(self, tenant_id: str, message_id: str) -> list[XmppStanza]:
        rows = self._all(
            "SELECT * FROM stanzas WHERE tenant_id = ? AND message_id = ? ORDER BY send_seq",
            (tenant_id, message_id),
        )
        return [stanza_from_row(row) for row in rows]

    def find_outbound(
        self,
        tenant_id: str,
        *,
        stanza_id: str | None = None,
        origin_id: str | None = None,
        stable_id: str | None = None,
    ) -> list[OutboundRecord]:
        """Outbound stanzas matching any given id, in send order; more than one means ambiguous.

        One indexed lookup per id column (with ``direction`` or an ``OR`` in one WHERE clause the planner
        chose the conversation index and scanned every outbound stanza of the tenant); the rows are merged
        and ordered here, which is cheaper than a UNION's temporary b-trees."""
        ids = (("stanza_id", stanza_id), ("origin_id", origin_id), ("stable_id", stable_id))
        given = [(column, value) for column, value in ids if value is not None]
        if not given:
            return []
        branch = f"SELECT {OUTBOUND_COLUMNS} FROM stanzas WHERE tenant_id = ? AND {{}} = ?"
        branches = " UNION ALL ".join(branch.format(column) for column, _ in given)
        rows = self._all(branches, [p for _, value in given for p in (tenant_id, value)])
        outbound = {row["stanza_ref"]: row for row in rows if row["direction"] == "outbound"}
        return [outbound_from_row(row) for row in sorted(outbound.values(), key=lambda r: r["send_seq"])]

    def markables_before(self, tenant_id: str, conversation: str, stanza_id: str) -> list[OutboundRecord]:
        """Markable outbound stanzas to ``conversation`` (a bare JID) sent before ``stanza_id``,
        oldest first."""
        marked = self._one(
            "SELECT send_seq FROM stanzas WHERE tenant_id = ? AND direction = 'outbound' AND to_bare = ?"
            " AND (stanza_id = ? OR origin_id = ?) ORDER BY send_seq DESC LIMIT 1",
            (tenant_id, jids.bare(conversation), stanza_id, stanza_id),
        )
        if marked is None:
            return []
        rows = self._all(
            "SELECT * FROM stanzas WHERE tenant_id = ? AND direction = 'outbound' AND to_bare = ?"
            " AND markable = 1 AND send_seq < ? ORDER BY send_seq",
            (tenant_id, jids.bare(conversation), marked["send_seq"]),
        )
        return [outbound_from_row(row) for row in rows]

    def latest_outbound(self, tenant_id: str, conversation: str) -> OutboundRecord | None:
        """The last stanza sent to this conversation (bare JID)."""
        row = self._one(
            "SELECT * FROM stanzas WHERE tenant_id = ? AND direction = 'outbound' AND to_bare = ?"
            " ORDER BY send_seq DESC LIMIT 1",
            (tenant_id, jids.bare(conversation)),
        )
        return outbound_from_row(row) if row else None
