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

_NOT_XML = "\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff"
"""The characters XML does not allow (besides CR, LF and tab, which it does)."""
_VALUE = f"(\"[^{_NOT_XML}\t\n\r&<>\"]*\"|'[^{_NOT_XML}\t\n\r&<>']*')"
"""A quoted attribute value whose parsed value is its text."""
_TEXT = f"[^{_NOT_XML}\r&<>]+(?:&(?:amp|lt|gt);[^{_NOT_XML}\r&<>]*)*|(?:&(?:amp|lt|gt);[^{_NOT_XML}\r&<>]*)+"
"""Non-empty element text whose parsed value, written again by ``ET.tostring``, is the text itself."""
_BODY = f"[^{_NOT_XML}&<>]*(?:&(?:amp|lt|gt);[^{_NOT_XML}&<>]*)*"
"""Well-formed element text (it is dropped, so only that matters)."""

_OWN_MESSAGE = re.compile(
    f'<message xmlns="({"|".join(_STREAM_NAMESPACES)})" to={_VALUE}(?: from={_VALUE})?'
    f" type='(chat|normal|groupchat)' id={_VALUE}>"
    f"<body>{_BODY}</body><thread>({_TEXT})</thread>"
    f"<origin-id xmlns='{_SID_NS}' id={_VALUE}/>"
    f"(<request xmlns='{_RECEIPTS_NS}'/>)?(<markable xmlns='{_MARKERS_NS}'/>)?</message>"
)


def _frame(namespace: str, request: bool, markable: bool) -> tuple[str, str]:
    """The redacted message's namespace declarations, and its children after the origin-id with its end."""
    namespaces = [namespace, _SID_NS]
    after = ""
    if request:
        namespaces.append(_RECEIPTS_NS)
        after += "<ns2:request />"
    if markable:
        namespaces.append(_MARKERS_NS)
        after += f"<ns{len(namespaces) - 1}:markable />"
    declarations = "".join(f' xmlns:ns{n}="{uri}"' for n, uri in enumerate(namespaces))
    return declarations, after + "</ns0:message>"


_FRAMES = {
    (namespace, request, markable): _frame(namespace, bool(request), bool(markable))
    for namespace in _STREAM_NAMESPACES
    for request in ("", f"<request xmlns='{_RECEIPTS_NS}'/>")
    for markable in ("", f"<markable xmlns='{_MARKERS_NS}'/>")
}
"""By the matched namespace and the matched (or empty) request and markable elements."""
_OUR_NAMESPACES = frozenset((*_STREAM_NAMESPACES, _SID_NS, _RECEIPTS_NS, _MARKERS_NS))


def redact_own_message(stanza_xml: str) -> str | None:
    """The redacted text of a message our send path wrote (body dropped); None for anything else."""
    match = _OWN_MESSAGE.fullmatch(stanza_xml)
    if match is None or not _OUR_NAMESPACES.isdisjoint(ET._namespace_map):  # type: ignore[attr-defined]
        # A prefix registered with ET.register_namespace would replace ns0, ns1, ... in ET.tostring.
        return None
    namespace, to, sender, message_type, stanza_id, thread, origin_id, request, markable = match.groups("")
    declarations, after = _FRAMES[namespace, request, markable]
    sender_attribute = f' from="{_attribute(sender)}"' if sender else ""
    return (f'<ns0:message{declarations} to="{_attribute(to)}"{sender_attribute} type="{message_type}" '
            f'id="{_attribute(stanza_id)}"><ns0:thread>{thread}</ns0:thread>'
            f'<ns1:origin-id id="{_attribute(origin_id)}" />{after}')


def _attribute(quoted: str) -> str:
    """A quoted value as ``ET.tostring`` writes it between double quotes."""
    return quoted[1:-1].replace('"', "&quot;")
