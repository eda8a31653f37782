"""XEP-0313 message archive queries with XEP-0059 result set paging: the query element and the page end."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

NS_MAM = "urn:xmpp:mam:2"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_DATA = "jabber:x:data"


@dataclass(frozen=True)
class ArchiveQuery:
    """What to look for: messages exchanged with ``with_jid`` (any when None) from ``start`` on, read in
    pages of ``page_size`` up to ``max_pages`` pages. ``archive_jid`` is whose archive (ours when None,
    a room's for its history)."""

    with_jid: str | None = None
    start: datetime | None = None
    archive_jid: str | None = None
    page_size: int = 50
    max_pages: int = 20


@dataclass(frozen=True)
class ArchivePage:
    """The end of one page (``<fin/>``): whether the archive has no more, and where the next page starts."""

    complete: bool
    last: str | None
    count: int | None


@dataclass(frozen=True)
class ArchiveResult:
    """A whole query: how many pages were read, whether the archive was read to its end, and the error
    condition (snake_case, or ``timeout``) that stopped it early, if any. The archived messages themselves
    arrive as ``stanza_received`` native events (one MAM result each), not here."""

    query_id: str
    pages: int
    complete: bool
    error_condition: str | None = None


def _field(form: ET.Element, var: str, value: str) -> None:
    field = ET.SubElement(form, f"{{{NS_DATA}}}field", {"var": var})
    ET.SubElement(field, f"{{{NS_DATA}}}value").text = value


def query_element(query: ArchiveQuery, query_id: str, after: str | None) -> ET.Element:
    """The ``<query xmlns='urn:xmpp:mam:2'/>`` for one page (after the archive id ``after``)."""
    element = ET.Element(f"{{{NS_MAM}}}query", {"queryid": query_id})
    form = ET.SubElement(element, f"{{{NS_DATA}}}x", {"type": "submit"})
    _field(form, "FORM_TYPE", NS_MAM)
    if query.with_jid is not None:
        _field(form, "with", query.with_jid)
    if query.start is not None:
        _field(form, "start", query.start.isoformat().replace("+00:00", "Z"))
    page = ET.SubElement(element, f"{{{NS_RSM}}}set")
    ET.SubElement(page, f"{{{NS_RSM}}}max").text = str(query.page_size)
    if after is not None:
        ET.SubElement(page, f"{{{NS_RSM}}}after").text = after
    return element


def page_end(result: ET.Element) -> ArchivePage:
    """Read ``<fin complete='true'><set><last/><count/></set></fin>`` from an iq result."""
    fin = result.find(f"{{{NS_MAM}}}fin")
    if fin is None:
        return ArchivePage(complete=True, last=None, count=None)
    rsm = fin.find(f"{{{NS_RSM}}}set")
    last = rsm.findtext(f"{{{NS_RSM}}}last") if rsm is not None else None
    count_text = rsm.findtext(f"{{{NS_RSM}}}count") if rsm is not None else None
    count = int(count_text) if count_text and count_text.isdigit() else None
    return ArchivePage(complete=fin.get("complete") in ("true", "1"), last=last, count=count)
