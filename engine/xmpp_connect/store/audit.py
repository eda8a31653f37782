"""The evidence chain in the store: signed checkpoints of a tenant's chain head, and verifying the whole log
against its hashes and checkpoints (``xmpp-connect audit verify``; spec/audit.md)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from xmpp_connect.model.chain import GENESIS, ChainFailure, walk
from xmpp_connect.model.checkpoint import Checkpoint, sign_checkpoint, signature_valid
from xmpp_connect.store.connection import SqlBase, log
from xmpp_connect.store.evidence_log import evidence_where
from xmpp_connect.store.timestamps import to_text

_CHECKPOINT_COLUMNS = (
    "tenant_id",
    "checkpoint_id",
    "head_event_id",
    "head_hash",
    "entries",
    "signed_at",
    "key_id",
    "signature",
)


@dataclass
class AuditReport:
    """What ``audit verify`` found for one tenant; ``failure`` is the first entry that does not verify."""

    tenant_id: str
    entries: int = 0
    legacy: int = 0
    anonymized: int = 0
    raw_checked: int = 0
    raw_purged: int = 0
    checkpoints: int = 0
    signatures_checked: bool = False
    head_event_id: str | None = None
    head_hash: str = GENESIS
    failure: ChainFailure | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "ok": self.ok,
            "entries": self.entries,
            "unchained_before_chain": self.legacy,
            "anonymized": self.anonymized,
            "raw_checked": self.raw_checked,
            "raw_purged": self.raw_purged,
            "checkpoints": self.checkpoints,
            "signatures_checked": self.signatures_checked,
            "head_event_id": self.head_event_id,
            "head_hash": self.head_hash,
            "failure": self.failure.to_dict() if self.failure else None,
        }


def checkpoint_from_row(row: Any) -> Checkpoint:
    return Checkpoint(**{name: row[name] for name in _CHECKPOINT_COLUMNS})


class ChainAudit(SqlBase):
    """Checkpoints and verification over the chained evidence log."""

    def chain_tenants(self) -> list[str]:
        """Every tenant with evidence or checkpoints."""
        rows = self._all(
            "SELECT tenant_id FROM evidence_events UNION SELECT tenant_id FROM chain_checkpoints ORDER BY 1"
        )
        return [row["tenant_id"] for row in rows]

    def chain_head(self, tenant_id: str) -> tuple[str | None, str, int]:
        """The tenant's last chained entry, its chain hash and the number of chained entries up to it."""
        row = self._one(
            "SELECT seq, event_id, chain_hash FROM evidence_events"
            " WHERE tenant_id = ? AND chain_hash IS NOT NULL ORDER BY seq DESC LIMIT 1",
            (tenant_id,),
        )
        if row is None:
            return None, GENESIS, 0
        count = self._one(
            "SELECT COUNT(*) AS n FROM evidence_events"
            " WHERE tenant_id = ? AND chain_hash IS NOT NULL AND seq <= ?",
            (tenant_id, row["seq"]),
        )
        return row["event_id"], row["chain_hash"], int(count["n"]) if count else 0

    def last_position(self, tenant_id: str) -> int:
        """The tenant's last feed position (0 before its first entry)."""
        row = self._one("SELECT MAX(seq) AS seq FROM evidence_events WHERE tenant_id = ?", (tenant_id,))
        return int(row["seq"]) if row and row["seq"] is not None else 0

    def create_checkpoint(self, tenant_id: str, key: Ed25519PrivateKey, now: datetime) -> Checkpoint:
        """Sign the tenant's chain head as it is now and store the checkpoint."""
        head_event_id, head_hash, entries = self.chain_head(tenant_id)
        checkpoint = sign_checkpoint(
            key,
            tenant_id=tenant_id,
            checkpoint_id="cp_" + uuid.uuid4().hex,
            head_event_id=head_event_id,
            head_hash=head_hash,
            entries=entries,
            signed_at=to_text(now),
        )
        values = checkpoint.to_dict()
        with self._write() as conn:
            self._exec(
                conn,
                f"INSERT INTO chain_checkpoints ({', '.join(_CHECKPOINT_COLUMNS)})"
                f" VALUES ({', '.join('?' for _ in _CHECKPOINT_COLUMNS)})",
                tuple(values[name] for name in _CHECKPOINT_COLUMNS),
            )
        log.info("chain checkpoint signed tenant=%s entries=%d", tenant_id, entries)
        return checkpoint

    def list_checkpoints(self, tenant_id: str, limit: int | None = None) -> list[Checkpoint]:
        """The tenant's checkpoints, newest first."""
        sql = "SELECT * FROM chain_checkpoints WHERE tenant_id = ? ORDER BY signed_at DESC, entries DESC"
        rows = self._all(sql + (f" LIMIT {int(limit)}" if limit else ""), (tenant_id,))
        return [checkpoint_from_row(row) for row in rows]

    def chain_rows(
        self, tenant_id: str, after_seq: int = 0, until_seq: int | None = None
    ) -> list[dict[str, Any]]:
        """The tenant's evidence rows in log order, every column."""
        sql = "SELECT * FROM evidence_events WHERE tenant_id = ? AND seq > ?"
        params: list[Any] = [tenant_id, after_seq]
        if until_seq is not None:
            sql += " AND seq <= ?"
            params.append(until_seq)
        return [dict(row) for row in self._all(sql + " ORDER BY seq", params)]

    def selected_rows(
        self,
        tenant_id: str,
        *,
        case_id: str | None = None,
        participant_id: str | None = None,
        message_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> list[dict[str, Any]]:
        """The tenant's chained rows matching every given selector (times compare with ``occurred_at``)."""
        where, params = evidence_where(tenant_id, message_id, case_id=case_id, participant_id=participant_id)
        if since is not None:
            where += " AND occurred_at >= ?"
            params = [*params, since]
        if until is not None:
            where += " AND occurred_at < ?"
            params = [*params, until]
        rows = self._all(
            f"SELECT * FROM evidence_events WHERE {where} AND entry_hash IS NOT NULL ORDER BY seq", params
        )
        return [dict(row) for row in rows]

    def chain_hash_before(self, tenant_id: str, seq: int) -> str:
        """The tenant's chain hash just before the entry at ``seq``."""
        row = self._one(
            "SELECT chain_hash FROM evidence_events"
            " WHERE tenant_id = ? AND seq < ? AND chain_hash IS NOT NULL ORDER BY seq DESC LIMIT 1",
            (tenant_id, seq),
        )
        return str(row["chain_hash"]) if row else GENESIS

    def verify_chain(self, tenant_id: str, public_key: Ed25519PublicKey | None = None) -> AuditReport:
        """Walk the tenant's whole chain, the raw stanza digests it covers, then every checkpoint."""
        report = AuditReport(tenant_id, signatures_checked=public_key is not None)
        result = walk(
            self.chain_rows(tenant_id), exists=lambda event_id: self._has_event(tenant_id, event_id)
        )
        report.entries, report.legacy, report.anonymized = result.entries, result.legacy, result.anonymized
        report.head_event_id, report.head_hash = result.head_event_id, result.head_hash
        if result.failure is not None:
            report.failure = result.failure
            return report
        report.failure = self._verify_raw(tenant_id, report)
        if report.failure is not None:
            return report
        positions = result.positions or {}
        for checkpoint in sorted(self.list_checkpoints(tenant_id), key=lambda c: (c.entries, c.signed_at)):
            report.checkpoints += 1
            report.failure = _checkpoint_failure(checkpoint, positions, public_key)
            if report.failure is not None:
                return report
        return report

    def _has_event(self, tenant_id: str, event_id: str) -> bool:
        row = self._one(
            "SELECT 1 AS found FROM evidence_events WHERE tenant_id = ? AND event_id = ?",
            (tenant_id, event_id),
        )
        return row is not None

    def _verify_raw(self, tenant_id: str, report: AuditReport) -> ChainFailure | None:
        """Each stored raw stanza still matches the digest its entries cover (purged ones are skipped)."""
        rows = self._all(
            "SELECT e.seq, e.event_id, e.raw_ref, e.raw_sha256, r.content FROM evidence_events e"
            " JOIN raw_events r ON r.tenant_id = e.tenant_id AND r.raw_event_id = e.raw_ref"
            " WHERE e.tenant_id = ? AND e.raw_sha256 IS NOT NULL ORDER BY e.seq",
            (tenant_id,),
        )
        for row in rows:
            if row["content"] is None:
                report.raw_purged += 1
                continue
            report.raw_checked += 1
            if hashlib.sha256(row["content"].encode("utf-8")).hexdigest() != row["raw_sha256"]:
                return ChainFailure(
                    "raw_changed",
                    row["event_id"],
                    int(row["seq"]),
                    f"raw stanza {row['raw_ref']} differs from the digest the entry covers",
                )
        return None


def _checkpoint_failure(
    checkpoint: Checkpoint, positions: dict[str, tuple[int, str]], public_key: Ed25519PublicKey | None
) -> ChainFailure | None:
    """Why a checkpoint does not verify against the walked chain, or None."""
    if public_key is not None and not signature_valid(checkpoint, public_key):
        return ChainFailure(
            "checkpoint", checkpoint.checkpoint_id, None, "the checkpoint's signature does not verify"
        )
    if checkpoint.head_event_id is None:
        return None if checkpoint.entries == 0 else _missing(checkpoint)
    position = positions.get(checkpoint.head_event_id)
    if position is None:
        return _missing(checkpoint)
    if position != (checkpoint.entries, checkpoint.head_hash):
        return ChainFailure(
            "changed",
            checkpoint.head_event_id,
            None,
            f"checkpoint {checkpoint.checkpoint_id} signed another chain up to this entry",
        )
    return None


def _missing(checkpoint: Checkpoint) -> ChainFailure:
    return ChainFailure(
        "removed",
        str(checkpoint.head_event_id),
        None,
        f"checkpoint {checkpoint.checkpoint_id} covers this entry, which is not in the log",
    )
