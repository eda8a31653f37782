"""Consistent pseudonyms for JIDs and participant ids across one export (or one anonymization run)."""

from __future__ import annotations

import re
from typing import Any

JID_PATTERN = re.compile(r"[^\s@/\"'<>&|:]+@[A-Za-z0-9][A-Za-z0-9.\-]*(?:/[^\s\"'<>&|]*)?")
"""A JID with a localpart (``local@domain`` with an optional ``/resource``), as found inside text."""


class Pseudonyms:
    """The same bare JID always maps to the same pseudonym, its resources to numbered resources."""

    def __init__(self, domain: str = "anon.invalid") -> None:
        self.domain = domain
        self._bare: dict[str, str] = {}
        self._resources: dict[str, str] = {}
        self._participants: dict[str, str] = {}

    def jid(self, jid: str) -> str:
        bare, _, resource = jid.partition("/")
        pseudonym = self._bare.setdefault(bare.lower(), f"user{len(self._bare) + 1}@{self.domain}")
        if not resource:
            return pseudonym
        alias = self._resources.setdefault(jid, f"r{len(self._resources) + 1}")
        return f"{pseudonym}/{alias}"

    def participant(self, participant_id: str) -> str:
        return self._participants.setdefault(participant_id, f"anon-p{len(self._participants) + 1}")

    def text(self, text: str) -> str:
        """Every JID inside the text replaced."""
        return JID_PATTERN.sub(lambda match: self.jid(match.group(0)), text)

    def value(self, value: Any) -> Any:
        """A JSON value with every JID inside its strings replaced (keys too)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, dict):
            return {self.text(key): self.value(item) for key, item in value.items()}
        return value
