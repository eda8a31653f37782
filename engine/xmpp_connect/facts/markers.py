"""XEP-0333 cumulative marker semantics: a marker for one message also covers the earlier markable ones."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from xmpp_connect.model.correlation import OutboundRecord


@dataclass(frozen=True)
class MarkerCoverage:
    """The record a marker names, and the earlier markable records it marks by implication (send order)."""

    named: OutboundRecord
    inferred: tuple[OutboundRecord, ...]


def _ids(record: OutboundRecord) -> set[str]:
    return {i for i in (record.stanza_id, record.origin_id) if i}


def marker_coverage(
    sent: Sequence[OutboundRecord], marked_id: str, already_marked: Collection[str] = frozenset()
) -> MarkerCoverage | None:
    """Which of one conversation's outbound stanzas (``sent``, in send order) a marker naming ``marked_id``
    covers. ``already_marked`` holds stanza ids that earlier markers covered; they are not inferred again.
    None when no record carries ``marked_id`` (as stanza id or origin-id)."""
    for index, record in enumerate(sent):
        if marked_id in _ids(record):
            inferred = tuple(
                earlier
                for earlier in sent[:index]
                if earlier.markable and earlier.stanza_id not in already_marked
            )
            return MarkerCoverage(named=record, inferred=inferred)
    return None
