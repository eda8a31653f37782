"""The redacted form of a message in the shape our send path writes (providers/stanza_builders.py), made
from its text without parsing it: exactly what parsing, dropping the body and ``ET.tostring`` give.

Only text whose parsed values are the text itself is taken (attribute values without ``&``, ``<``, ``>``
or whitespace other than spaces; element text whose only references are ``&amp;``, ``&lt;``, ``&gt;`` and
no carriage return; characters XML allows): anything else, and any other stanza, gets None and goes through
the parser (xmpp/redaction.py).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

_SID_NS = "urn:xmpp:sid:0"
_RECEIPTS_NS = "urn:xmpp:receipts"
_MARKERS_NS = "urn:xmpp:chat-markers:0"
_STREAM_NAMESPACES = ("jabber:client", "jabber:component:accept")

_XML_CHARS_ABOVE_ANGLE = "\x3f-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff"
"""The characters XML allows from ``?`` up."""
_DOUBLE_QUOTED = f'"[\x20\x21\x23-\x25\x27-\x3b\x3d{_XML_CHARS_ABOVE_ANGLE}]*"'
_SINGLE_QUOTED = f"'[\x20-\x25\x28-\x3b\x3d{_XML_CHARS_ABOVE_ANGLE}]*'"
_VALUE = f"({_DOUBLE_QUOTED}|{_SINGLE_QUOTED})"
_TEXT = f"(?:[\t\n\x20-\x25\x27-\x3b\x3d{_XML_CHARS_ABOVE_ANGLE}]|&amp;|&lt;|&gt;)"
"""Element text whose parsed value, written again by ``ET.tostring``, is the text itself."""
_BODY = f"(?:[\t\n\r\x20-\x25\x27-\x3b\x3d{_XML_CHARS_ABOVE_ANGLE}]|&amp;|&lt;|&gt;)*"
"""Well-formed element text (it is dropped, so only that matters)."""

_OWN_MESSAGE = re.compile(
    f'<message xmlns="({"|".join(_STREAM_NAMESPACES)})" to={_VALUE}(?: from={_VALUE})?'
    f" type='(chat|normal|groupchat)' id={_VALUE}>"
    f"<body>{_BODY}</body><thread>({_TEXT}+)</thread>"
    f"<origin-id xmlns='{_SID_NS}' id={_VALUE}/>"
    f"(<request xmlns='{_RECEIPTS_NS}'/>)?(<markable xmlns='{_MARKERS_NS}'/>)?</message>"
)


def redact_own_message(stanza_xml: str) -> str | None:
    """The redacted text of a message our send path wrote (body dropped); None for anything else."""
    match = _OWN_MESSAGE.fullmatch(stanza_xml)
    if match is None or _prefixes_registered():
        return None
    namespace, to, sender, message_type, stanza_id, thread, origin_id, request, markable = match.groups()
    namespaces = [namespace, _SID_NS]
    if request:
        namespaces.append(_RECEIPTS_NS)
    if markable:
        namespaces.append(_MARKERS_NS)
    declarations = "".join(f' xmlns:ns{n}="{uri}"' for n, uri in enumerate(namespaces))
    sender_attribute = f' from="{_attribute(sender)}"' if sender else ""
    children = [f"<ns0:thread>{thread}</ns0:thread>", f'<ns1:origin-id id="{_attribute(origin_id)}" />']
    if request:
        children.append("<ns2:request />")
    if markable:
        children.append(f"<ns{len(namespaces) - 1}:markable />")
    return (f'<ns0:message{declarations} to="{_attribute(to)}"{sender_attribute} type="{message_type}" '
            f'id="{_attribute(stanza_id)}">{"".join(children)}</ns0:message>')


def _attribute(quoted: str) -> str:
    """A quoted value as ``ET.tostring`` writes it between double quotes."""
    return quoted[1:-1].replace('"', "&quot;")


def _prefixes_registered() -> bool:
    """Whether ``ET.register_namespace`` gave one of these namespaces a prefix (``ET.tostring`` would use
    it instead of ns0, ns1, ...)."""
    registered: dict[str, str] = ET._namespace_map  # type: ignore[attr-defined]
    return any(uri in registered for uri in (*_STREAM_NAMESPACES, _SID_NS, _RECEIPTS_NS, _MARKERS_NS))
