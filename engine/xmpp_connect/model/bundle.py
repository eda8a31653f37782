"""Evidence export bundles (JSON lines; spec/audit.md): their line format and the offline verification.

A bundle needs no service to verify: its selected entries are recomputed, the chain segment they sit in is
linked up to a signed checkpoint, and the checkpoint's signature is checked against the adapter's key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from xmpp_connect.model.chain import canonical_json, walk
from xmpp_connect.model.checkpoint import Checkpoint, SigningKeyError, load_public_key, signature_valid

BUNDLE_FORMAT = "xc-export-1"


class BundleError(ValueError):
    """The file is not a readable export bundle."""


def lines_digest(lines: Iterable[Mapping[str, Any]]) -> str:
    """sha256 over the canonical JSON of every line after the manifest, each followed by a newline."""
    digest = hashlib.sha256()
    for line in lines:
        digest.update(canonical_json(line) + b"\n")
    return digest.hexdigest()


def encode_bundle(
    manifest: Mapping[str, Any], lines: list[dict[str, Any]], key: Ed25519PrivateKey | None = None
) -> str:
    """The bundle text: the manifest (with the lines' digest, signed with ``key`` when given) first, then
    one line per record."""
    head: dict[str, Any] = {**manifest, "lines": len(lines), "lines_sha256": lines_digest(lines)}
    if key is not None:
        head["manifest_signature"] = base64.b64encode(key.sign(_manifest_bytes(head))).decode()
    return "".join(canonical_json(line).decode("utf-8") + "\n" for line in (head, *lines))


def _manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """What the manifest signature covers: the canonical JSON of the manifest without the signature."""
    return canonical_json({k: v for k, v in manifest.items() if k != "manifest_signature"})


@dataclass
class BundleReport:
    """The outcome of verifying a bundle offline; ``problem`` says why it is refused."""

    ok: bool = False
    entries: int = 0
    links: int = 0
    anonymized: int = 0
    raw_refs: int = 0
    raw_content_checked: int = 0
    checkpoint_id: str | None = None
    key_source: str = ""
    problem: str | None = None
    failure: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def parse_bundle(text: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise BundleError(f"line {exc.lineno}: not JSON") from None
    if not records or not isinstance(records[0], dict) or records[0].get("format") != BUNDLE_FORMAT:
        raise BundleError(f"the first line is not a {BUNDLE_FORMAT} manifest")
    if not all(isinstance(record, dict) for record in records):
        raise BundleError("every line must be a JSON object")
    return records[0], records[1:]


def verify_bundle(text: str, public_key: str | None = None) -> BundleReport:
    """Verify a bundle: manifest digest, entries, chain segment, checkpoint and its signature, raw digests.

    ``public_key`` is the adapter's published key (base64 or PEM); without it the bundle's own copy is used
    and the report says so (it then proves integrity only if that key is the adapter's)."""
    report = BundleReport()
    try:
        manifest, lines = parse_bundle(text)
    except BundleError as exc:
        report.problem = str(exc)
        return report
    if manifest.get("lines") != len(lines) or manifest.get("lines_sha256") != lines_digest(lines):
        report.problem = "the bundle's lines do not match its manifest (lines added, removed or changed)"
        return report
    key, problem = _key(manifest, public_key, report)
    if key is None:
        report.problem = problem
        return report
    checkpoint = _checkpoint(manifest)
    if checkpoint is None:
        report.problem = "the manifest names no checkpoint"
        return report
    report.checkpoint_id = checkpoint.checkpoint_id
    if not signature_valid(checkpoint, key):
        report.problem = "the checkpoint's signature does not verify with the adapter's key"
        return report
    report.problem = _manifest_problem(manifest, key, report)
    if report.problem is not None:
        return report
    segment = [line for line in lines if line.get("type") in ("entry", "link")]
    rows = [line["row"] if line["type"] == "entry" else line for line in segment]
    start = str(manifest.get("segment", {}).get("start_hash", ""))
    ids = {str(row.get("event_id")) for row in rows}
    hash_only = {id(line) for line in segment if line["type"] == "link"}
    result = walk(rows, start=start, exists=ids.__contains__, hash_only=lambda row: id(row) in hash_only)
    report.entries = len(segment) - len(hash_only)
    report.links = len(hash_only)
    report.anonymized = result.anonymized
    if result.failure is not None:
        report.failure = result.failure.to_dict()
        report.problem = f"entry {result.failure.event_id} does not verify ({result.failure.kind})"
        return report
    if (result.head_event_id, result.head_hash) != (checkpoint.head_event_id, checkpoint.head_hash):
        report.problem = "the chain segment does not end at the checkpoint's signed head"
        return report
    selected = [line["row"] for line in segment if line["type"] == "entry"]
    report.problem = (
        _selection_problem(manifest, selected)
        or _raw_problem(lines, rows, report)
        or _policy_problem(manifest, rows)
    )
    report.ok = report.problem is None
    return report


def _manifest_problem(manifest: Mapping[str, Any], key: Ed25519PublicKey, report: BundleReport) -> str | None:
    signature = manifest.get("manifest_signature")
    if signature is None:
        report.notes.append(
            "the manifest is unsigned: selection, options and policy hashes are not authenticated"
        )
        return None
    try:
        key.verify(base64.b64decode(str(signature)), _manifest_bytes(manifest))
    except (InvalidSignature, ValueError):
        return "the manifest's signature does not verify (selection, options or policy changed)"
    return None


def _selection_problem(manifest: Mapping[str, Any], selected: list[Mapping[str, Any]]) -> str | None:
    """Every exported entry matches the selection the manifest states."""
    selection = manifest.get("selection", {})
    anonymized = manifest.get("options", {}).get("anonymized") is True
    for row in selected:
        for column in ("case_id", "participant_id", "message_id"):
            if column == "participant_id" and anonymized:
                continue
            if column in selection and row.get(column) != selection[column]:
                return f"entry {row.get('event_id')} is outside the stated selection ({column})"
        occurred = str(row.get("occurred_at"))
        if ("since" in selection and occurred < selection["since"]) or (
            "until" in selection and occurred >= selection["until"]
        ):
            return f"entry {row.get('event_id')} is outside the stated time range"
    return None


def _key(
    manifest: Mapping[str, Any], public_key: str | None, report: BundleReport
) -> tuple[Ed25519PublicKey | None, str]:
    text = public_key or manifest.get("public_key")
    report.key_source = "given" if public_key else "bundle"
    if not public_key:
        report.notes.append("verified with the public key inside the bundle: compare it with the adapter's")
    if not isinstance(text, str):
        return None, "no public key given and none in the bundle"
    try:
        return load_public_key(text), ""
    except SigningKeyError as exc:
        return None, str(exc)


def _checkpoint(manifest: Mapping[str, Any]) -> Checkpoint | None:
    data = manifest.get("checkpoint")
    if not isinstance(data, dict):
        return None
    try:
        return Checkpoint(**data)
    except TypeError:
        return None


def _raw_problem(lines: list[dict[str, Any]], rows: list[Any], report: BundleReport) -> str | None:
    """Every raw reference's digest is the one its entries cover; included content matches it."""
    covered = {row.get("raw_ref"): row.get("raw_sha256") for row in rows if row.get("raw_ref")}
    for line in lines:
        if line.get("type") != "raw":
            continue
        report.raw_refs += 1
        raw_id = line.get("raw_event_id")
        if covered.get(raw_id) != line.get("content_sha256"):
            return f"raw stanza {raw_id}: its digest is not the one the evidence covers"
        content = line.get("content")
        if isinstance(content, str) and not line.get("content_altered"):
            if hashlib.sha256(content.encode("utf-8")).hexdigest() != line.get("content_sha256"):
                return f"raw stanza {raw_id}: the content differs from its digest"
            report.raw_content_checked += 1
    return None


def _policy_problem(manifest: Mapping[str, Any], rows: list[Any]) -> str | None:
    versions = set(manifest.get("policy", {}).get("versions", []))
    used = {row.get("policy_version") for row in rows if "policy_version" in row}
    missing = sorted(str(v) for v in used - versions)
    return f"policy versions {missing} are not listed in the manifest" if missing else None
