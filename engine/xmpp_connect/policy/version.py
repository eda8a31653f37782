"""The policy version: a digest of every table file, so each classification names what decided it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

VERSION_HEX_DIGITS = 16


def policy_version(root: Path, relpaths: Iterable[str]) -> str:
    """sha256 over the sorted (relative path, bytes) of the table files; the first 16 hex digits.

    Each file contributes `path NUL length NUL bytes`, so no two different file sets hash alike.
    """
    digest = hashlib.sha256()
    for relpath in sorted(relpaths):
        data = (root / relpath).read_bytes()
        digest.update(f"{relpath}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:VERSION_HEX_DIGITS]
