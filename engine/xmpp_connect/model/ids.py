"""Time-ordered ids (spec/ids.md): a millisecond time part first, so ids made at about the same time sort
together and a store's indexes take new rows at their right edge, then a digest part."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_TIME_ORDERED_MESSAGE = re.compile(r"xmppmsg_([0-9a-f]{12})[0-9a-f]{20}")


def time_ordered(at: datetime, digest: str) -> str:
    """32 hex digits: ``at`` in milliseconds since the epoch (12 digits), then the first 20 of ``digest``."""
    return f"{(at - _EPOCH) // _MILLISECOND:012x}{digest[:20]}"


def message_time(message_id: str | None) -> str | None:
    """The time part of a time-ordered message id; None for any other id (the 24-digit digests of before)."""
    found = _TIME_ORDERED_MESSAGE.fullmatch(message_id or "")
    return found.group(1) if found else None


def beside_message(message_id: str | None, digest: str, legacy_digits: int) -> str:
    """An id derived from a message's id: its time part and 20 digits of ``digest``, so the rows about one
    message, and about messages sent about the same time, sort together. For a message id that is not
    time-ordered, the first ``legacy_digits`` of ``digest`` as before (ids already stored stay the same)."""
    prefix = message_time(message_id)
    return prefix + digest[:20] if prefix else digest[:legacy_digits]
