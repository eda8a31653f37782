"""The opaque event-feed cursor: a feed position, versioned and base64url-encoded."""

from __future__ import annotations

import base64
import binascii

from xmpp_connect.store.errors import InvalidCursor

_PREFIX = "v1:"


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The position after which the next page starts; no cursor means the beginning."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursor("malformed cursor") from exc
    if not text.startswith(_PREFIX) or not text[len(_PREFIX) :].isdigit():
        raise InvalidCursor("malformed cursor")
    return int(text[len(_PREFIX) :])
