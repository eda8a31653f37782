"""The tenant's evidence hash chain: canonical entry form, hashes and the verification walk (spec/audit.md).

Pure code over stored column values, so the store, the CLI and an offline bundle check share one definition.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

CHAIN_FORMAT = "xc-chain-1"
GENESIS = "0" * 64
"""The chain hash before a tenant's first entry."""

CONTENT_COLUMNS = (
    "tenant_id",
    "event_id",
    "event_type",
    "scenario",
    "rule_id",
    "policy_version",
    "category",
    "subclass",
    "confidence",
    "grade",
    "attempt_state",
    "message_id",
    "attempt_id",
    "case_id",
    "correlation_id",
    "endpoint_ref",
    "raw_ref",
    "raw_sha256",
    "occurred_at",
    "recorded_at",
    "late",
    "inferred",
    "emitted",
    "scope",
    "notes",
    "grade_dimensions",
    "prev_event_id",
    "personal_sha256",
)
"""The columns an entry hash covers, in this order (the feed position ``seq`` is not one: order is proven
by the links)."""

PERSONAL_COLUMNS = ("participant_id", "dedupe_key", "fact", "sender_jid", "sender_resource")
"""Columns that may name a person: the entry hash covers only their salted digest."""

CHAIN_COLUMNS = (
    "raw_sha256",
    "personal_salt",
    "personal_sha256",
    "prev_event_id",
    "entry_hash",
    "chain_hash",
)
"""The columns the chain adds to an evidence row."""


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_C_MAKE_ENCODER = getattr(json.encoder, "c_make_encoder", None)
_ONE_SHOT = (
    None
    if _C_MAKE_ENCODER is None
    else _C_MAKE_ENCODER(None, _CANONICAL.default, json.encoder.encode_basestring, None, ":", ",", True,
                         False, False)
)
"""The C encoder that ``_CANONICAL.encode`` builds on every call (with these very arguments), built once:
the fallback for what orjson does not encode as it does (tests/store/test_canonical.py)."""
SCALARS = frozenset((str, int, bool, type(None)))
"""The exact types whose JSON orjson writes byte for byte as ``json`` does (strings without lone
surrogates, integers within 64 bits: orjson refuses the others). Floats, subclasses and every other type
take the fallback."""


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8 (no ASCII escaping): one byte string per value.

    orjson writes it where it gives the very bytes ``json`` gives (plain strings, integers, booleans, null
    in lists, tuples and string-keyed dicts); anything else, or what orjson refuses, goes to ``json``."""
    try:
        if _plain(value):
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, RecursionError):
        pass
    return _json_bytes(value)


def _json_bytes(value: Any) -> bytes:
    """``canonical_json`` through the standard library's encoder."""
    if _ONE_SHOT is None:
        return _CANONICAL.encode(value).encode("utf-8")
    return "".join(_ONE_SHOT(value, 0)).encode("utf-8")


def _plain(value: Any) -> bool:
    """Whether ``value`` holds only the types orjson encodes as ``json`` does (a flat array: one C loop)."""
    kind = type(value)
    if kind is list or kind is tuple:
        return SCALARS.issuperset(map(type, value)) or all(map(_plain, value))
    if kind is dict:
        return all(type(key) is str for key in value) and all(map(_plain, value.values()))
    return kind in SCALARS


def personal_digest(salt: str, row: Mapping[str, Any]) -> str:
    """sha256 over the salt's bytes and the canonical JSON array of the personal columns."""
    return salted_digest(bytes.fromhex(salt), [row.get(name) for name in PERSONAL_COLUMNS])


def salted_digest(salt: bytes, values: Sequence[Any]) -> str:
    """``personal_digest`` of the personal columns' values, already in PERSONAL_COLUMNS order."""
    return hashlib.sha256(salt + canonical_json(values)).hexdigest()


def entry_digest(row: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON array [format, the content columns' values in order]."""
    return content_digest([row.get(name) for name in CONTENT_COLUMNS])


def content_digest(values: Sequence[Any]) -> str:
    """``entry_digest`` of the content columns' values, already in CONTENT_COLUMNS order."""
    return hashlib.sha256(canonical_json([CHAIN_FORMAT, *values])).hexdigest()


def link(prev_chain_hash: str, entry_hash: str) -> str:
    """The chain hash after an entry: sha256(previous chain hash bytes || entry hash bytes)."""
    return link_digest(bytes.fromhex(prev_chain_hash), bytes.fromhex(entry_hash)).hex()


def link_digest(prev_chain_digest: bytes, entry_digest: bytes) -> bytes:
    """``link`` over the digests' bytes."""
    return hashlib.sha256(prev_chain_digest + entry_digest).digest()


@dataclass(frozen=True)
class ChainFailure:
    """The first entry that does not verify. ``kind``: changed | removed | reordered | unchained."""

    kind: str
    event_id: str
    seq: int | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "event_id": self.event_id, "seq": self.seq, "detail": self.detail}


@dataclass
class ChainWalk:
    """The outcome of walking a chain: verified entries, their chain hashes by event id, the first failure."""

    entries: int = 0
    legacy: int = 0
    anonymized: int = 0
    head_event_id: str | None = None
    head_hash: str = GENESIS
    failure: ChainFailure | None = None
    positions: dict[str, tuple[int, str]] | None = None
    """event id -> (number of chained entries up to it, its chain hash)."""


def walk(
    rows: Iterable[Mapping[str, Any]],
    start: str = GENESIS,
    exists: Callable[[str], bool] = lambda _event_id: False,
    hash_only: Callable[[Mapping[str, Any]], bool] = lambda _row: False,
) -> ChainWalk:
    """Walk rows in log order from chain hash ``start``; stop at the first that does not verify.

    ``exists`` tells whether an event id is anywhere in the log (a broken link to an existing entry is a
    reordering, to a missing one a removal). ``hash_only`` rows carry only their entry hash (an export's
    entries outside the selection): they are linked, not recomputed.
    """
    result = ChainWalk(head_hash=start, positions={})
    assert result.positions is not None
    seen: set[str] = set()
    unchained: set[str] = set()
    previous: str | None = None
    for row in rows:
        event_id = str(row.get("event_id"))
        seq = row.get("seq")
        entry_hash = row.get("entry_hash")
        if entry_hash is None:
            if result.entries == 0:
                result.legacy += 1
                unchained.add(event_id)
                continue
            result.failure = ChainFailure("unchained", event_id, seq, "the entry's chain hashes were removed")
            return result
        if not hash_only(row):
            failure = _content_failure(row, event_id, seq)
            if failure is not None:
                result.failure = failure
                return result
            if row.get("personal_salt") is None:
                result.anonymized += 1
            expected_previous = row.get("prev_event_id")
            from_genesis = result.entries == 0 and start == GENESIS
            if expected_previous != previous and (result.entries > 0 or from_genesis):
                result.failure = _broken_link(event_id, seq, expected_previous, seen, exists, unchained)
                return result
        chain_hash = link(result.head_hash, str(entry_hash))
        stored_chain = row.get("chain_hash")
        if stored_chain is not None and stored_chain != chain_hash:
            result.failure = _broken_link(event_id, seq, row.get("prev_event_id"), seen, exists, unchained)
            return result
        result.entries += 1
        result.head_hash = chain_hash
        result.head_event_id = event_id
        result.positions[event_id] = (result.entries, chain_hash)
        seen.add(event_id)
        previous = event_id
    return result


def _content_failure(row: Mapping[str, Any], event_id: str, seq: int | None) -> ChainFailure | None:
    salt = row.get("personal_salt")
    if salt is not None and personal_digest(str(salt), row) != row.get("personal_sha256"):
        return ChainFailure(
            "changed", event_id, seq, "participant, dedupe key or fact differ from the hashed ones"
        )
    if entry_digest(row) != row.get("entry_hash"):
        return ChainFailure("changed", event_id, seq, "the entry's content differs from its hash")
    return None


def _broken_link(
    event_id: str,
    seq: int | None,
    expected_previous: Any,
    seen: set[str],
    exists: Callable[[str], bool],
    unchained: set[str],
) -> ChainFailure:
    if expected_previous is None:
        return ChainFailure("changed", event_id, seq, "the entry does not link to the chain before it")
    if expected_previous in unchained:
        return ChainFailure(
            "unchained", str(expected_previous), None, f"the entry before {event_id} lost its chain hashes"
        )
    if expected_previous in seen or exists(str(expected_previous)):
        return ChainFailure(
            "reordered", event_id, seq, f"the entry was appended right after {expected_previous}, not here"
        )
    return ChainFailure(
        "removed",
        str(expected_previous),
        None,
        f"the entry appended right before {event_id} is missing",
    )
