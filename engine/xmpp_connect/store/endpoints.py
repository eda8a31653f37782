"""Endpoints (§9.4), the suppression list (§12.1) and endpoint quality (§25)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from xmpp_connect.model.evidence import EvidenceEvent, endpoint_ref
from xmpp_connect.model.quality import QualitySignals
from xmpp_connect.store.connection import SqlBase, log
from xmpp_connect.store.quality import EndpointQuality, endpoint_quality
from xmpp_connect.store.records import (
    ENDPOINT_TYPES,
    SUPPRESSION_STATES,
    VERIFICATION_STATES,
    PresenceState,
    Suppression,
    XmppEndpoint,
)
from xmpp_connect.store.rows import check_allowed, suppression_from_row, to_json
from xmpp_connect.store.timestamps import to_text
from xmpp_connect.xmpp import jids


class EndpointRecords(SqlBase):
    """Endpoints with their suppression state, and quality computed from the log."""

    if TYPE_CHECKING:  # provided by the evidence-log and observation mixins of the composed store

        def evidence_for_endpoint(self, tenant_id: str, endpoint: str) -> list[EvidenceEvent]: ...
        def presence(self, tenant_id: str, jid: str) -> list[PresenceState]: ...
        def presence_history(self, tenant_id: str, jid: str) -> list[PresenceState]: ...

    def upsert_endpoint(self, endpoint: XmppEndpoint) -> XmppEndpoint:
        check_allowed(endpoint.endpoint_type, ENDPOINT_TYPES, "endpoint type")
        check_allowed(endpoint.verification_state, VERIFICATION_STATES, "verification state")
        with self._write() as conn:
            self._exec(
                conn,
                "INSERT INTO endpoints (tenant_id, endpoint_id, endpoint_type, jid, bare_jid, resource,"
                " display_name, verification_state, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant_id, endpoint_id) DO UPDATE SET endpoint_type = excluded.endpoint_type,"
                " jid = excluded.jid, bare_jid = excluded.bare_jid, resource = excluded.resource,"
                " display_name = excluded.display_name, verification_state = excluded.verification_state,"
                " metadata = excluded.metadata",
                (
                    endpoint.tenant_id,
                    endpoint.endpoint_id,
                    endpoint.endpoint_type,
                    endpoint.jid,
                    endpoint.bare_jid,
                    endpoint.resource,
                    endpoint.display_name,
                    endpoint.verification_state,
                    to_json(endpoint.metadata),
                ),
            )
        stored = self.get_endpoint(endpoint.tenant_id, endpoint.endpoint_id)
        assert stored is not None
        return stored

    def remember_endpoint(self, tenant_id: str, jid: str, endpoint_type: str) -> None:
        """Keep the endpoint a message goes to, so its ``ep_`` reference can be looked up later; an
        endpoint already known (e.g. registered with a tracking context) is left as it is, and one this
        store wrote or found lately is not written again (every send to a recipient remembers it)."""
        check_allowed(endpoint_type, ENDPOINT_TYPES, "endpoint type")
        ref = endpoint_ref(tenant_id, jid)
        if self._known_endpoints.get((tenant_id, ref)):
            return
        with self._write() as conn:
            self._exec(
                conn,
                "INSERT INTO endpoints (tenant_id, endpoint_id, endpoint_type, jid, bare_jid, resource,"
                " display_name, verification_state, metadata) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, '{}')"
                " ON CONFLICT (tenant_id, endpoint_id) DO NOTHING",
                (
                    tenant_id,
                    ref,
                    endpoint_type,
                    jids.bare(jid),
                    jids.bare(jid),
                    None,
                    "syntax_validated",
                ),
            )
        self._known_endpoints.put((tenant_id, ref), True)

    def get_endpoint(self, tenant_id: str, endpoint_id: str) -> XmppEndpoint | None:
        row = self._one(
            "SELECT e.*, s.state AS suppression FROM endpoints e LEFT JOIN suppressions s"
            " ON s.tenant_id = e.tenant_id AND s.bare_jid = e.bare_jid WHERE e.tenant_id = ?"
            " AND e.endpoint_id = ?",
            (tenant_id, endpoint_id),
        )
        if row is None:
            return None
        return XmppEndpoint(
            row["tenant_id"],
            row["endpoint_id"],
            row["endpoint_type"],
            row["jid"],
            row["bare_jid"],
            row["resource"],
            row["display_name"],
            row["verification_state"],
            row["suppression"] or "active",
            json.loads(row["metadata"]),
        )

    def suppress(
        self, tenant_id: str, jid: str, state: str = "suppressed", reason: str | None = None
    ) -> Suppression:
        """Put a bare JID on the suppression list (idempotent: the first entry is kept)."""
        check_allowed(state, SUPPRESSION_STATES, "suppression state")
        with self._write() as conn:
            self._exec(
                conn,
                "INSERT INTO suppressions (tenant_id, bare_jid, state, reason, created_at)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant_id, bare_jid) DO NOTHING",
                (tenant_id, jids.bare(jid), state, reason, to_text(self.options.clock())),
            )
        found = self.suppression(tenant_id, jid)
        assert found is not None
        log.info("recipient suppressed endpoint_ref=%s", endpoint_ref(tenant_id, jid))
        return found

    def unsuppress(self, tenant_id: str, jid: str) -> bool:
        """Remove a bare JID from the suppression list; False if it was not on it."""
        with self._write() as conn:
            row = self._exec(
                conn,
                "DELETE FROM suppressions WHERE tenant_id = ? AND bare_jid = ? RETURNING bare_jid",
                (tenant_id, jids.bare(jid)),
            ).fetchone()
        return row is not None

    def suppression(self, tenant_id: str, jid: str) -> Suppression | None:
        row = self._one(
            "SELECT * FROM suppressions WHERE tenant_id = ? AND bare_jid = ?", (tenant_id, jids.bare(jid))
        )
        return suppression_from_row(row) if row else None

    def list_suppressions(self, tenant_id: str) -> list[Suppression]:
        rows = self._all("SELECT * FROM suppressions WHERE tenant_id = ? ORDER BY bare_jid", (tenant_id,))
        return [suppression_from_row(row) for row in rows]

    def endpoint_quality(self, tenant_id: str, jid: str, signals: QualitySignals) -> EndpointQuality:
        """§25 quality of the endpoint behind a JID, from its evidence log, presence and suppression."""
        if jid.startswith("ep_"):
            raise ValueError("an endpoint reference is not a JID: use endpoint_quality_by_ref")
        ref = endpoint_ref(tenant_id, jid)
        suppression = self.suppression(tenant_id, jid)
        return endpoint_quality(
            ref,
            self.evidence_for_endpoint(tenant_id, ref),
            self.presence(tenant_id, jid),
            suppression.state if suppression else "active",
            signals,
            self.presence_history(tenant_id, jid),
        )

    def endpoint_quality_by_ref(
        self, tenant_id: str, ref: str, signals: QualitySignals
    ) -> EndpointQuality | None:
        """§25 quality of the endpoint with this ``ep_`` reference; None when no endpoint has it."""
        endpoint = self.get_endpoint(tenant_id, ref)
        return None if endpoint is None else self.endpoint_quality(tenant_id, endpoint.jid, signals)
