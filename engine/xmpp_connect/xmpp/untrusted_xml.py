"""Untrusted XML read within limits: the size is checked before parsing, DTDs, entity declarations and
external references are refused by defusedxml, and depth and element count are checked while the tree is
built."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import defusedxml
import defusedxml.ElementTree as SafeElementTree

MAX_STANZA_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_ELEMENTS = 5000


class StanzaRejected(ValueError):
    """The input is not a stanza this adapter will read; ``reason`` says why (never quotes the content)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _LimitedTreeBuilder(ElementTree.TreeBuilder):
    """A tree builder that refuses documents deeper than MAX_DEPTH or larger than MAX_ELEMENTS."""

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._count = 0

    def start(self, tag: str, attrs: dict[str, str]) -> ElementTree.Element:
        self._depth += 1
        self._count += 1
        if self._depth > MAX_DEPTH:
            raise StanzaRejected(f"nested deeper than {MAX_DEPTH} elements")
        if self._count > MAX_ELEMENTS:
            raise StanzaRejected(f"more than {MAX_ELEMENTS} elements")
        return super().start(tag, attrs)

    def end(self, tag: str) -> ElementTree.Element:
        self._depth -= 1
        return super().end(tag)


def within_size(raw: str) -> bool:
    """What ``parse_xml`` accepts, without encoding text that cannot exceed the limit (UTF-8: <= 4 bytes a
    character)."""
    if len(raw) > MAX_STANZA_BYTES:
        return False
    return len(raw) * 4 <= MAX_STANZA_BYTES or len(raw.encode("utf-8")) <= MAX_STANZA_BYTES


def _to_bytes(raw: str | bytes) -> bytes:
    if isinstance(raw, str):
        if len(raw) > MAX_STANZA_BYTES:
            raise StanzaRejected(f"larger than {MAX_STANZA_BYTES} bytes")
        raw = raw.encode("utf-8")
    if len(raw) > MAX_STANZA_BYTES:
        raise StanzaRejected(f"larger than {MAX_STANZA_BYTES} bytes")
    return raw


def parse_xml(raw: str | bytes) -> ElementTree.Element:
    """Parse untrusted XML within the module's limits; raise StanzaRejected on anything else."""
    data = _to_bytes(raw)
    parser = SafeElementTree.XMLParser(
        target=_LimitedTreeBuilder(), forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(data)
        return parser.close()
    except defusedxml.DTDForbidden:
        raise StanzaRejected("document type declarations are not allowed") from None
    except defusedxml.EntitiesForbidden:
        raise StanzaRejected("entity declarations are not allowed") from None
    except defusedxml.ExternalReferenceForbidden:
        raise StanzaRejected("external references are not allowed") from None
    except ElementTree.ParseError as exc:
        raise StanzaRejected(f"malformed XML ({exc})") from None
