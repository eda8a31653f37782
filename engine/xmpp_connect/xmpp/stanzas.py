"""Parse one raw XMPP stanza safely into a typed, read-only view of the parts evidence depends on.

Hostile input is refused with ``StanzaRejected`` before it can cost much (xmpp/untrusted_xml.py).
``from``/``to`` are kept as the raw attribute strings: a bounce from a malformed address still carries its
bad ``from``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable
from datetime import datetime

from xmpp_connect.xmpp.stanza_views import (
    MucUserView,
    PubSubView,
    StanzaErrorView,
    StanzaIdView,
    StanzaView,
    new_stanza_id,
    new_view,
)
from xmpp_connect.xmpp.untrusted_xml import MAX_DEPTH, MAX_ELEMENTS, StanzaRejected, parse_xml, within_size

STANZA_NAMESPACES = frozenset({"", "jabber:client", "jabber:server", "jabber:component:accept"})
STANZA_NAMES = frozenset({"message", "presence", "iq"})

NS_STANZA_ERRORS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_BLOCKING_ERRORS = "urn:xmpp:blocking:errors"
NS_RECEIPTS = "urn:xmpp:receipts"
NS_MARKERS = "urn:xmpp:chat-markers:0"
NS_SID = "urn:xmpp:sid:0"
NS_REPLY = "urn:xmpp:reply:0"
NS_DELAY = "urn:xmpp:delay"
NS_CHAT_STATES = "http://jabber.org/protocol/chatstates"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_MAM = "urn:xmpp:mam:2"
NS_FORWARD = "urn:xmpp:forward:0"
NS_STREAMS = "http://etherx.jabber.org/streams"
NS_XML = "http://www.w3.org/XML/1998/namespace"
PREFIXED_NAMESPACES = (f"{{{NS_STREAMS}}}", f"{{{NS_XML}}}")
"""Namespaces slixmpp's serialiser writes with a prefix (``stream:``, ``xml:``) it does not declare."""

ROOM_ANONYMITY_FEATURES = {
    "muc_nonanonymous": "non_anonymous",
    "muc_semianonymous": "semi_anonymous",
    "muc_fullyanonymous": "fully_anonymous",
}
"""XEP-0045 disco features and the room anonymity each names."""

MARKER_NAMES = ("displayed", "received", "acknowledged")
CHAT_STATES = ("active", "composing", "paused", "inactive", "gone")
PUBSUB_ACTIONS = ("publish", "items", "retract", "subscribe", "create", "delete", "purge")


def room_anonymity(features: Iterable[str]) -> str:
    """A room's anonymity from its disco#info features; ``unknown`` when none is advertised."""
    advertised = set(features)
    for feature, anonymity in ROOM_ANONYMITY_FEATURES.items():
        if feature in advertised:
            return anonymity
    return "unknown"


def split_tag(tag: str) -> tuple[str, str]:
    """``{ns}local`` -> (ns, local); a tag without namespace has ns ''."""
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}" if ns else local


def _child(parent: ElementTree.Element, ns: str, local: str) -> ElementTree.Element | None:
    return parent.find(_q(ns, local))


def _child_text(parent: ElementTree.Element, ns: str, local: str) -> str | None:
    element = _child(parent, ns, local)
    if element is None:
        return None
    return element.text or ""


def _parse_stamp(stamp: str | None) -> datetime | None:
    """XEP-0082 DateTime -> aware datetime; None when missing, malformed or without a zone."""
    if not stamp:
        return None
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _parse_priority(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if -128 <= value <= 127 else None


def _parse_error(element: ElementTree.Element, implicit_ns: str | None) -> StanzaErrorView:
    condition = None
    text = None
    app_conditions: list[str] = []
    for child in element:
        ns, local = split_tag(child.tag)
        if ns == NS_STANZA_ERRORS:
            if local == "text":
                text = child.text or ""
            elif condition is None:
                condition = local
        else:
            app_conditions.append(local if ns == implicit_ns else child.tag)
    return StanzaErrorView(
        type=element.get("type"),
        condition=condition,
        text=text,
        by=element.get("by"),
        app_conditions=tuple(app_conditions),
        blocked=_q(NS_BLOCKING_ERRORS, "blocked") in app_conditions,
    )


def _parse_muc_user(element: ElementTree.Element) -> MucUserView:
    codes: list[int] = []
    for status in element.findall(_q(NS_MUC_USER, "status")):
        code = status.get("code", "")
        if code.isdigit():
            codes.append(int(code))
    item = _child(element, NS_MUC_USER, "item")
    if item is None:
        return MucUserView(status_codes=tuple(codes))
    return MucUserView(
        status_codes=tuple(codes),
        item_jid=item.get("jid"),
        item_nick=item.get("nick"),
        item_role=item.get("role"),
        item_affiliation=item.get("affiliation"),
    )


def _parse_pubsub_event(element: ElementTree.Element) -> PubSubView | None:
    for child in element:
        ns, local = split_tag(child.tag)
        if ns != NS_PUBSUB_EVENT:
            continue
        items = tuple(i.get("id", "") for i in child.findall(_q(NS_PUBSUB_EVENT, "item")))
        retracts = tuple(r.get("id", "") for r in child.findall(_q(NS_PUBSUB_EVENT, "retract")))
        return PubSubView(action=local, node=child.get("node"), item_ids=items, retract_ids=retracts)
    return None


def _parse_pubsub(element: ElementTree.Element) -> PubSubView | None:
    for child in element:
        ns, local = split_tag(child.tag)
        if ns != NS_PUBSUB or local not in PUBSUB_ACTIONS:
            continue
        items = tuple(i.get("id", "") for i in child.findall(_q(NS_PUBSUB, "item")))
        return PubSubView(action=local, node=child.get("node"), item_ids=items)
    return None


def _parse_disco(query: ElementTree.Element) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    features = tuple(f.get("var", "") for f in query.findall(_q(NS_DISCO_INFO, "feature")))
    identities = tuple(
        (i.get("category", ""), i.get("type", "")) for i in query.findall(_q(NS_DISCO_INFO, "identity"))
    )
    return features, identities


_CORE_CHILDREN = ("body", "thread", "error", "show", "priority", "status")
_CORE_TAGS = {ns: {_q(ns, local): local for local in _CORE_CHILDREN} for ns in STANZA_NAMESPACES}
"""Per stanza namespace: the tags of the stanza's own children a view reads, and their local names."""
_STANZA_TAGS = {_q(ns, name): (ns, name) for ns in STANZA_NAMESPACES for name in STANZA_NAMES}


def parse_stanza(raw: str | bytes) -> StanzaView:
    """Parse one top-level ``<message/>``, ``<presence/>`` or ``<iq/>`` into a StanzaView."""
    return _view(parse_xml(raw))


def view_of_tree(root: ElementTree.Element, raw: str, stream_ns: str = "jabber:client") -> StanzaView | None:
    """What ``parse_stanza(raw)`` gives, read from the tree a stream parser already built, ``raw`` being that
    tree as slixmpp serialises it (the root's namespace when it is the stream's ``stream_ns``, and each
    namespace an element shares with its parent, left implicit).

    None when that is not certain, and then ``raw`` is to be parsed (which also words any refusal): ``raw``
    or the tree beyond the limits, not a stanza, an element without a namespace (it would merge with the
    implicit one) or in a namespace written with an undeclared prefix, a carriage return in text, or a
    carriage return, line feed or tab in an attribute value (a parser normalises those)."""
    if not within_size(raw) or not _faithful(root):
        return None
    stanza_ns = (_STANZA_TAGS.get(root.tag) or split_tag(root.tag))[0]
    try:
        return _view(root, implicit_ns=stanza_ns if stanza_ns == stream_ns else None)
    except StanzaRejected:
        return None


def _faithful(root: ElementTree.Element) -> bool:
    """Within MAX_DEPTH and MAX_ELEMENTS, and nothing the serialisation would not give back unchanged."""
    count = 0
    values: list[str] = []
    for element in root.iter():
        count += 1
        tag = element.tag
        if count > MAX_ELEMENTS:
            return False
        if tag not in _READ_TAGS and (tag[:1] != "{" or tag.startswith(PREFIXED_NAMESPACES)):
            return False
        attrib = element.attrib
        if attrib:
            values.extend(attrib.values())
    if count > MAX_DEPTH and _deeper_than(root, MAX_DEPTH):
        return False
    joined = "".join(values)
    if "\r" in joined or "\n" in joined or "\t" in joined:
        return False
    return "\r" not in "".join(root.itertext()) and not (root.tail and "\r" in root.tail)


def _deeper_than(root: ElementTree.Element, limit: int) -> bool:
    """Whether the tree nests more than ``limit`` elements (it can only with more than ``limit``)."""
    pending = [(root, 1)]
    while pending:
        element, depth = pending.pop()
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in element)
    return False


def _view(root: ElementTree.Element, implicit_ns: str | None = None) -> StanzaView:
    stanza_ns, name = _STANZA_TAGS.get(root.tag) or split_tag(root.tag)
    if stanza_ns not in STANZA_NAMESPACES or name not in STANZA_NAMES:
        raise StanzaRejected(f"not a stanza: <{name}> in namespace '{stanza_ns}'")
    core_tags = _CORE_TAGS[stanza_ns]
    core: dict[str, ElementTree.Element] = {}
    extensions: list[ElementTree.Element] = []
    for child in root:
        local = core_tags.get(child.tag)
        if local is None:
            extensions.append(child)
        elif local not in core:
            core[local] = child
    values = _extension_fields(extensions) if extensions else {}
    values["name"] = name
    attrib = root.attrib
    if attrib:
        get = attrib.get
        values["type"] = get("type")
        values["id"] = get("id")
        values["from_attr"] = get("from")
        values["to_attr"] = get("to")
    if core:
        values["body"] = _text(core.get("body"))
        values["thread"] = _text(core.get("thread"))
        error = core.get("error")
        if error is not None:
            values["error"] = _parse_error(error, implicit_ns)
        if name == "presence":
            values["presence_show"] = _text(core.get("show"))
            values["presence_priority"] = _parse_priority(_text(core.get("priority")))
            values["presence_status"] = _text(core.get("status"))
    return new_view(values)


def _text(element: ElementTree.Element | None) -> str | None:
    return None if element is None else element.text or ""


def _parse_archive_result(element: ElementTree.Element) -> dict[str, object]:
    """XEP-0313 ``<result/>``: the archive id, the query id, the stamp and the forwarded message."""
    fields: dict[str, object] = {"archive_id": element.get("id"), "archive_query_id": element.get("queryid")}
    forwarded = _child(element, NS_FORWARD, "forwarded")
    if forwarded is None:
        return fields
    delay = _child(forwarded, NS_DELAY, "delay")
    if delay is not None:
        fields["archive_stamp"] = _parse_stamp(delay.get("stamp"))
    for child in forwarded:
        if split_tag(child.tag)[1] == "message":
            fields["archived"] = _view(child)
            break
    return fields


_EXTENSION_KINDS = [
    (NS_RECEIPTS, "received", "received"),
    (NS_SID, "stanza-id", "stanza_id"),
    (NS_MARKERS, "markable", "markable"),
    *((NS_MARKERS, local, "marker") for local in MARKER_NAMES),
    (NS_SID, "origin-id", "origin_id"),
    (NS_RECEIPTS, "request", "request"),
    (NS_REPLY, "reply", "reply"),
    (NS_DELAY, "delay", "delay"),
    *((NS_CHAT_STATES, local, "chat_state") for local in CHAT_STATES),
    (NS_MUC_USER, "x", "muc_user"),
    (NS_PUBSUB_EVENT, "event", "pubsub_event"),
    (NS_PUBSUB, "pubsub", "pubsub"),
    (NS_DISCO_INFO, "query", "disco"),
    (NS_MAM, "result", "archive_result"),
]
_EXTENSION_TAGS = {_q(ns, local): (kind, local) for ns, local, kind in _EXTENSION_KINDS}
"""The XEP payloads a view reads, by tag: what each is and its local name."""


def _extension_fields(children: list[ElementTree.Element]) -> dict[str, object]:
    """Read the XEP payloads among the stanza's direct children."""
    fields: dict[str, object] = {}
    stanza_ids: list[StanzaIdView] = []
    for child in children:
        known = _EXTENSION_TAGS.get(child.tag)
        if known is None:
            continue
        kind, local = known
        if kind == "received":
            fields["receipt_received"] = True
            fields["receipt_id"] = child.get("id")
        elif kind == "stanza_id":
            assigned = child.get("id")
            if assigned:
                stanza_ids.append(new_stanza_id(assigned, child.get("by")))
        elif kind == "markable":
            fields["markable"] = True
        elif kind == "marker":
            if "marker" not in fields:
                fields["marker"] = local
                fields["marker_id"] = child.get("id")
        elif kind == "origin_id":
            fields["origin_id"] = child.get("id")
        elif kind == "request":
            fields["receipt_requested"] = True
        elif kind == "reply":
            fields["reply_to"] = child.get("to")
            fields["reply_id"] = child.get("id")
        elif kind == "delay":
            fields["delayed"] = True
            fields["delay_stamp"] = _parse_stamp(child.get("stamp"))
            fields["delay_from"] = child.get("from")
        elif kind == "chat_state":
            fields["chat_state"] = local
        elif kind == "muc_user":
            fields["muc_user"] = _parse_muc_user(child)
        elif kind == "pubsub_event":
            fields["pubsub_event"] = _parse_pubsub_event(child)
        elif kind == "pubsub":
            fields["pubsub"] = _parse_pubsub(child)
        elif kind == "disco":
            fields["disco_features"], fields["disco_identities"] = _parse_disco(child)
        else:
            fields.update(_parse_archive_result(child))
    if stanza_ids:
        fields["stanza_ids"] = tuple(stanza_ids)
    return fields


_READ_TAGS = frozenset(
    {tag for tag in _STANZA_TAGS if tag[:1] == "{"}
    | {tag for tags in _CORE_TAGS.values() for tag in tags if tag[:1] == "{"}
    | set(_EXTENSION_TAGS)
)
"""Namespaced tags a view reads, none of them in a prefixed namespace: the tree walk need not check them."""
