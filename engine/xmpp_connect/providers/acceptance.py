"""Per-stanza server acceptance (XEP-0198): which written stanzas the server acked, which it never will."""

from __future__ import annotations


class AcceptanceTracker:
    """Tracks stanzas from the moment they are written to a session until acked or the session is lost.

    A stanza written in a session that ends without resumption may or may not have reached the server:
    it moves to ``unknown`` and stays there (never forgotten). Stanzas queued but not yet written are not
    affected by a lost session: they are written, and tracked, in the next one.
    """

    def __init__(self) -> None:
        self.generation = 0
        self._awaiting: dict[str, int] = {}
        self.unknown: set[str] = set()

    def new_session(self) -> None:
        """A fresh (not resumed) session starts: later writes belong to it."""
        self.generation += 1

    def written(self, stanza_id: str) -> None:
        self._awaiting[stanza_id] = self.generation

    def acked(self, stanza_id: str) -> bool:
        """True when this ack settles a stanza we were waiting for."""
        if self._awaiting.pop(stanza_id, None) is not None:
            return True
        if stanza_id in self.unknown:
            self.unknown.discard(stanza_id)
            return True
        return False

    def session_lost(self) -> list[str]:
        """The session ended without resumption: its unacked stanzas, now acceptance-unknown."""
        lost = [sid for sid, generation in self._awaiting.items() if generation == self.generation]
        for stanza_id in lost:
            del self._awaiting[stanza_id]
        self.unknown.update(lost)
        return lost

    @property
    def awaiting(self) -> frozenset[str]:
        return frozenset(self._awaiting)
