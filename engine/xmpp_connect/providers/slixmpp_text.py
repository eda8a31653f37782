"""A stanza as text: exactly what slixmpp writes for it (`str(stanza)`), without its per-character escape.

The raw stanza kept (§30) is this text and its digest names it, so the output must not change by a byte:
anything this writer does not reproduce (an element without a namespace or in a namespace slixmpp writes
with a prefix, an attribute in a namespace other than ``xml:``, CDATA output, nesting beyond MAX_DEPTH) is
left to slixmpp.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from slixmpp.stanza import Message

from xmpp_connect.providers.slixmpp_messages import WrittenMessage
from xmpp_connect.providers.stanza_builders import CLIENT_NS, MARKERS_NS, RECEIPTS_NS, SID_NS, slixmpp_escape
from xmpp_connect.xmpp.stanzas import NS_XML
from xmpp_connect.xmpp.untrusted_xml import MAX_DEPTH

XML_ATTRIBUTE = f"{{{NS_XML}}}"
MESSAGE_NAMESPACES = (CLIENT_NS, SID_NS, RECEIPTS_NS, MARKERS_NS)


class _Unsupported(Exception):
    """The tree needs slixmpp's own writer."""


def stanza_text(stanza: Any) -> str:
    """``str(stanza)`` for a stanza slixmpp received (it carries its stream)."""
    stream = stanza.stream
    if stream is None or stream.use_cdata:
        return str(stanza)
    out: list[str] = []
    try:
        _write(stanza.xml, stream.default_ns, stream.namespace_map, 1, out)
    except _Unsupported:
        return str(stanza)
    return "".join(out)


def as_written(client: Any) -> Callable[[Any], Any]:
    """A last ``out_sce`` filter for ``client``: a message becomes the text slixmpp's send loop would write
    for it (``tostring(stanza.xml, xmlns=client.default_ns, stream=client, top_level=True)``, which is
    ``str(stanza)`` for a stanza of this stream), written here without slixmpp's per-character escape (a
    send-path message's text was written with it); the loop then writes the text as it is. Every other
    stanza is left to slixmpp."""

    def write(stanza: Any) -> Any:
        if isinstance(stanza, Message) and stanza.stream is client:
            if type(stanza) is WrittenMessage and stanza.wire is not None and _writes_plainly(client):
                return stanza.wire
            return stanza_text(stanza)
        return stanza

    return write


def _writes_plainly(stream: Any) -> bool:
    """The stream writes a send-path message as ``message_wire`` does: jabber:client its default namespace,
    none of the message's namespaces with a prefix, no CDATA."""
    prefixed = stream.namespace_map
    return (stream.default_ns == CLIENT_NS and not stream.use_cdata
            and not any(namespace in prefixed for namespace in MESSAGE_NAMESPACES))


def _write(element: ET.Element, parent_ns: str, prefixed: dict[str, str], depth: int, out: list[str]) -> None:
    tag = element.tag
    if depth > MAX_DEPTH or tag[:1] != "{":
        raise _Unsupported
    ns, _, name = tag[1:].partition("}")
    if ns in prefixed:
        raise _Unsupported
    out.append(f"<{name}")
    if ns != parent_ns:
        out.append(f' xmlns="{ns}"')
    for attribute, value in element.attrib.items():
        if "}" not in attribute:
            out.append(f' {attribute}="{slixmpp_escape(value)}"')
        elif attribute.startswith(XML_ATTRIBUTE):
            out.append(f' xml:{attribute[len(XML_ATTRIBUTE):]}="{slixmpp_escape(value)}"')
        elif attribute[1:].partition("}")[0] in prefixed:
            raise _Unsupported
    if len(element) or element.text:
        out.append(">")
        if element.text:
            out.append(slixmpp_escape(element.text))
        for child in element:
            _write(child, ns, prefixed, depth + 1, out)
        out.append(f"</{name}>")
    else:
        out.append(" />")
    if element.tail:
        out.append(slixmpp_escape(element.tail))
