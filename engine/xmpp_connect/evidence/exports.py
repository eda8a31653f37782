"""Building an evidence export bundle for a case, a participant, a message or a time range (spec/audit.md).

The bundle holds the selected entries as stored (so they can be recomputed), the hashes of every other entry
between the first selected one and a signed checkpoint, the raw stanza references, the policy version(s)
with the loaded tables' hashes, and a manifest. ``model.bundle.verify_bundle`` checks it offline.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from xmpp_connect.model.anonymize import Pseudonyms
from xmpp_connect.model.bundle import BUNDLE_FORMAT, encode_bundle
from xmpp_connect.model.checkpoint import Checkpoint, public_key_text
from xmpp_connect.policy.model import Policy
from xmpp_connect.store.sql import SqlStore
from xmpp_connect.store.timestamps import to_text
from xmpp_connect.xmpp.redaction import redact_stanza

BODY_KEYS = frozenset({"body", "body_text", "text"})
"""Fact keys that could carry message text; left out with ``bodies=False``."""


class ExportError(ValueError):
    """The export cannot be built as asked; ``status`` is the HTTP answer: 422 no selection, 404 nothing
    selected, 409 no checkpoint covers it and none can be signed."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ExportRequest:
    """What to export and how. Exactly one selector or a time range (``since``/``until`` on occurred_at)."""

    tenant_id: str
    case_id: str | None = None
    participant_id: str | None = None
    message_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    anonymize: bool = False
    bodies: bool = True
    raw_content: bool = False
    """Include each raw stanza as stored (redacted unless redaction was turned off)."""
    unredacted: bool = False
    """Allow content stored unredacted to leave as it is (the CLI only); otherwise it is redacted."""

    def selection(self) -> dict[str, Any]:
        chosen = {
            "case_id": self.case_id,
            "participant_id": self.participant_id,
            "message_id": self.message_id,
            "since": to_text(self.since) if self.since else None,
            "until": to_text(self.until) if self.until else None,
        }
        return {key: value for key, value in chosen.items() if value is not None}


def build_export(
    store: SqlStore,
    request: ExportRequest,
    *,
    now: datetime,
    key: Ed25519PrivateKey | None,
    policy: Policy | None = None,
) -> str:
    """The bundle text (no selection: the tenant's whole log). Signs a fresh checkpoint when no stored one
    covers the selection (needs ``key``)."""
    selected = _selected_rows(store, request)
    if not selected:
        raise ExportError("no evidence matches the selection", 404)
    first_seq, last_seq = int(selected[0]["seq"]), int(selected[-1]["seq"])
    checkpoint, head_seq = _covering_checkpoint(store, request.tenant_id, last_seq, now, key)
    chosen = {row["event_id"] for row in selected}
    names = Pseudonyms() if request.anonymize else None
    selection = request.selection()
    if names is not None and request.participant_id is not None:
        selection["participant_id"] = names.participant(request.participant_id)
    lines: list[dict[str, Any]] = []
    for row in store.chain_rows(request.tenant_id, after_seq=first_seq - 1, until_seq=head_seq):
        if row["entry_hash"] is None:
            continue
        if row["event_id"] in chosen:
            lines.append({"type": "entry", "row": _entry_row(row, request, names)})
        else:
            lines.append({"type": "link", "event_id": row["event_id"], "entry_hash": row["entry_hash"]})
    lines.extend(_raw_lines(store, request, selected, names))
    manifest = {
        "format": BUNDLE_FORMAT,
        "tenant_id": request.tenant_id,
        "created_at": to_text(now),
        "selection": selection,
        "options": {
            "anonymized": request.anonymize,
            "bodies": request.bodies,
            "raw_content": request.raw_content,
        },
        "counts": {"entries": len(selected), "links": len(lines) - len(selected)},
        "segment": {"start_hash": store.chain_hash_before(request.tenant_id, first_seq)},
        "checkpoint": checkpoint.to_dict(),
        "public_key": public_key_text(key) if key is not None else None,
        "policy": _policy(selected, policy),
    }
    return encode_bundle(manifest, lines, key)


def _selected_rows(store: SqlStore, request: ExportRequest) -> list[dict[str, Any]]:
    return store.selected_rows(
        request.tenant_id,
        case_id=request.case_id,
        participant_id=request.participant_id,
        message_id=request.message_id,
        since=to_text(request.since) if request.since else None,
        until=to_text(request.until) if request.until else None,
    )


def _covering_checkpoint(
    store: SqlStore, tenant_id: str, last_seq: int, now: datetime, key: Ed25519PrivateKey | None
) -> tuple[Checkpoint, int]:
    """The newest stored checkpoint at or after the last selected entry, else a fresh one."""
    for checkpoint in store.list_checkpoints(tenant_id, limit=1):
        head = store.get_event(tenant_id, checkpoint.head_event_id) if checkpoint.head_event_id else None
        if head is not None and head.seq is not None and head.seq >= last_seq:
            return checkpoint, head.seq
    if key is None:
        raise ExportError("no checkpoint covers the selection and no audit.signing_key is configured", 409)
    checkpoint = store.create_checkpoint(tenant_id, key, now)
    head = store.get_event(tenant_id, str(checkpoint.head_event_id))
    assert head is not None and head.seq is not None
    return checkpoint, head.seq


def _entry_row(row: dict[str, Any], request: ExportRequest, names: Pseudonyms | None) -> dict[str, Any]:
    out = dict(row)
    if names is None and request.bodies:
        return out
    fact = json.loads(out["fact"])
    if not request.bodies:
        fact = {key: value for key, value in fact.items() if key not in BODY_KEYS}
    if names is not None:
        fact = names.value(fact)
        out["dedupe_key"] = names.text(out["dedupe_key"]) if out["dedupe_key"] else None
        out["participant_id"] = names.participant(out["participant_id"]) if out["participant_id"] else None
        out["sender_jid"] = names.text(out["sender_jid"]) if out.get("sender_jid") else None
    altered = json.dumps(fact, sort_keys=True)
    if altered != out["fact"] or names is not None:
        out["fact"] = altered
        out["personal_salt"] = None  # the personal columns changed: only their digest is verifiable
    return out


def _raw_lines(
    store: SqlStore, request: ExportRequest, selected: list[dict[str, Any]], names: Pseudonyms | None
) -> list[dict[str, Any]]:
    lines = []
    for raw_id in dict.fromkeys(row["raw_ref"] for row in selected if row["raw_ref"] and row["raw_sha256"]):
        found = store.get_raw(request.tenant_id, raw_id)
        if found is None:
            continue
        ref, content = found
        line: dict[str, Any] = {
            "type": "raw",
            "raw_event_id": raw_id,
            "source": ref.source,
            "received_at": to_text(ref.received_at),
            "redacted": ref.redacted,
            "purged": content is None,
            "content_sha256": next(r["raw_sha256"] for r in selected if r["raw_ref"] == raw_id),
        }
        if request.raw_content and request.bodies and content is not None:
            shown = content if ref.redacted or request.unredacted else redact_stanza(content)
            if names is not None:
                shown = names.text(shown)
            line["content"] = shown
            line["content_altered"] = shown != content
        lines.append(line)
    return lines


def _policy(selected: list[dict[str, Any]], policy: Policy | None) -> dict[str, Any]:
    """The policy versions the entries name; the loaded tables' hashes when one of them is loaded."""
    versions = sorted({str(row["policy_version"]) for row in selected})
    section: dict[str, Any] = {"versions": versions}
    if policy is not None and policy.version in versions:
        section["tables"] = {
            "version": policy.version,
            "sha256": {
                relpath: hashlib.sha256((policy.root / relpath).read_bytes()).hexdigest()
                for relpath in policy.files
            },
        }
    return section
