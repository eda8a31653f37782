"""Timestamps as stored: UTC ISO 8601 text with microseconds, so text order is time order on every backend."""

from __future__ import annotations

from datetime import UTC, datetime


def to_text(moment: datetime) -> str:
    """Aware datetime -> sortable UTC text (``YYYY-MM-DDTHH:MM:SS.ffffffZ``); naive datetimes are refused
    (their zone is unknown). ``isoformat`` without ``timespec`` (which costs about as much as the rest)
    writes the microseconds unless they are 0."""
    if moment.tzinfo is not UTC:
        if moment.tzinfo is None:
            raise ValueError("naive datetime: store times must carry a time zone")
        moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.isoformat()[:-6] + "Z"
    return moment.isoformat()[:-6] + ".000000Z"


def to_text_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else to_text(moment)


def from_text(text: str) -> datetime:
    """Stored text -> aware UTC datetime (``fromisoformat`` reads the trailing Z; ~20x faster than
    ``strptime``)."""
    return datetime.fromisoformat(text)


def from_text_or_none(text: str | None) -> datetime | None:
    return None if text is None else from_text(text)


def utc_now() -> datetime:
    return datetime.now(UTC)
