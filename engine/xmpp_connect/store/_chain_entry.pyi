"""One chain entry's columns in compiled code (_chain_entry.c; the reference: model/chain.py)."""

from typing import Any

def entry(
    format: str,
    personal_layout: bytes,
    content_layout: bytes,
    salt: bytes,
    salt_hex: str,
    prev_chain: str,
    row: tuple[Any, ...],
    raw_sha256: str | None,
    prev_event_id: str | None,
    /,
) -> tuple[Any, ...] | None: ...
