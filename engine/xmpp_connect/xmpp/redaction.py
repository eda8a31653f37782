"""Privacy for stored and exported data (§28): raw stanza redaction and JID anonymization."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any, TypeVar
from xml.parsers import expat

from defusedxml import ElementTree as SafeET

from xmpp_connect.xmpp.own_message_redaction import redact_own_message

REDACTED_NS = "urn:xmpp-connect:redacted"
UNPARSEABLE = f'<redacted xmlns="{REDACTED_NS}" reason="unparseable"/>'

# Elements whose content is message content or a secret, whatever their namespace.
_SENSITIVE_NAMES = frozenset(
    {"body", "subject", "status", "password", "text", "html", "encrypted", "openpgp"}
)
# Whole payload namespaces: XHTML-IM, out-of-band URLs, OMEMO/OpenPGP, forms, legacy auth/registration.
_SENSITIVE_NAMESPACES = frozenset(
    {
        "http://jabber.org/protocol/xhtml-im",
        "http://www.w3.org/1999/xhtml",
        "jabber:x:oob",
        "eu.siacs.conversations.axolotl",
        "urn:xmpp:omemo:2",
        "urn:xmpp:openpgp:0",
        "jabber:x:encrypted",
        "jabber:x:signed",
        "jabber:x:data",
        "jabber:iq:auth",
        "jabber:iq:register",
        "urn:ietf:params:xml:ns:xmpp-sasl",
    }
)
# PubSub item payloads are application content: the item (and its id) stays, its children go.
_ITEM_CONTAINERS = frozenset({"http://jabber.org/protocol/pubsub", "http://jabber.org/protocol/pubsub#event"})
_SENSITIVE_WORDS = tuple(sorted(_SENSITIVE_NAMES | _SENSITIVE_NAMESPACES | _ITEM_CONTAINERS))


def redact_stanza(stanza_xml: str, well_formed: bool = False) -> str:
    """The stanza without bodies and sensitive children (also inside forwarded/carbon copies).

    A stanza that cannot be parsed is not stored at all: a placeholder is returned instead. ``well_formed``:
    the caller's XML parser took this very text (the pipeline's), so it need not be parsed to prove that.
    """
    redacted = redact_own_message(stanza_xml)
    if redacted is not None:
        return redacted
    if _plainly_clean(stanza_xml, well_formed):
        return stanza_xml
    return redact_parsed(stanza_xml)


def redact_parsed(stanza_xml: str) -> str:
    """``redact_stanza`` through a parsed tree, for any stanza."""
    try:
        root = SafeET.fromstring(stanza_xml)
    except (ET.ParseError, ValueError):
        return UNPARSEABLE
    if _is_sensitive(root):
        return f'<redacted xmlns="{REDACTED_NS}" element="{_local(root.tag)}"/>'
    _redact_children(root)
    return ET.tostring(root, encoding="unicode")


def _plainly_clean(stanza_xml: str, well_formed: bool = False) -> bool:
    """Nothing to redact, seen without building a tree (most receipts, markers, acks, presence): no
    sensitive element name or namespace appears in the text at all, nothing is escaped (a character
    reference could spell one), no declaration, and the text is well-formed XML (parsed here unless the
    caller's parser took it: a namespace-aware expat's checks include the plain one's)."""
    if "&" in stanza_xml or "<!" in stanza_xml or any(word in stanza_xml for word in _SENSITIVE_WORDS):
        return False
    if well_formed:
        return True
    parser = expat.ParserCreate()
    try:
        parser.Parse(stanza_xml, True)
    except expat.ExpatError:
        return False
    return True


def _redact_children(element: ET.Element) -> None:
    for child in list(element):
        if _is_sensitive(child):
            element.remove(child)
        elif _local(child.tag) == "item" and _namespace(child.tag) in _ITEM_CONTAINERS:
            for payload in list(child):
                child.remove(payload)
        else:
            _redact_children(child)


def _is_sensitive(element: ET.Element) -> bool:
    return _local(element.tag) in _SENSITIVE_NAMES or _namespace(element.tag) in _SENSITIVE_NAMESPACES


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


T = TypeVar("T")


class JidAnonymizer:
    """Replaces JIDs by keyed pseudonyms for exports: the same JID always maps to the same pseudonym
    under one key, so exported records still link up, but the JID cannot be read back."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("anonymization key must be at least 16 bytes")
        self._key = key

    def jid(self, jid: str) -> str:
        bare, _, resource = jid.partition("/")
        account = f"anon-{self._pseudonym(bare.lower())}@anonymized.invalid"
        return f"{account}/r-{self._pseudonym(resource)[:8]}" if resource else account

    def record(self, record: T) -> T:
        """A copy of a dataclass record (or mapping) with every ``*jid`` field anonymized."""
        if dataclasses.is_dataclass(record) and not isinstance(record, type):
            changes = {
                f.name: self._value(getattr(record, f.name))
                for f in dataclasses.fields(record)
                if _is_jid_field(f.name)
            }
            return dataclasses.replace(record, **changes)
        if isinstance(record, Mapping):
            return type(record)(  # type: ignore[call-arg]
                {k: self._value(v) if _is_jid_field(k) else v for k, v in record.items()}
            )
        raise TypeError("anonymize a dataclass record or a mapping")

    def _value(self, value: Any) -> Any:
        return self.jid(value) if isinstance(value, str) and value else value

    def _pseudonym(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()[:16]


def _is_jid_field(name: str) -> bool:
    return name == "jid" or name.endswith("_jid")
