"""A received stanza read from the tree slixmpp's stream parser built, not parsed again from its text: the
same view as parsing the text, and hostile stanzas (too large, too deep, too many elements) still refused;
its text written as slixmpp writes it, to the byte."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from slixmpp import ClientXMPP
from slixmpp.stanza import Message, Presence

import captured_stanzas
from awkward_messages import awkward_messages
from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.pipeline import EvidencePipeline
from xmpp_connect.facts.outbound_index import InMemoryOutboundIndex
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.policy.load import load_policy
from xmpp_connect.providers.base import SessionTuning
from xmpp_connect.providers.slixmpp_inbound import InboundStanzas
from xmpp_connect.providers.slixmpp_session import SessionState
from xmpp_connect.providers.slixmpp_text import stanza_text
from xmpp_connect.xmpp.redaction import redact_stanza
from xmpp_connect.xmpp.stanza_views import StanzaIdView, StanzaView, new_stanza_id, new_view
from xmpp_connect.xmpp.stanzas import (
    PREFIXED_NAMESPACES,
    parse_stanza,
    view_of_tree,
)
from xmpp_connect.xmpp.untrusted_xml import (
    MAX_DEPTH,
    MAX_ELEMENTS,
    MAX_STANZA_BYTES,
    StanzaRejected,
    within_size,
)

CAPTURED = [value for name, value in vars(captured_stanzas).items() if name.isupper()]
MORE = [
    # XEP-0313 result: the archived message is in jabber:client again, below another namespace.
    '<message to="alice@localhost/adapter" from="alice@localhost">'
    '<result xmlns="urn:xmpp:mam:2" queryid="q1" id="a1"><forwarded xmlns="urn:xmpp:forward:0">'
    '<delay xmlns="urn:xmpp:delay" stamp="2026-01-01T12:00:00Z" />'
    '<message xmlns="jabber:client" type="chat" from="bob@localhost/phone" to="alice@localhost" id="m9">'
    '<body>hi</body>'
    '<origin-id xmlns="urn:xmpp:sid:0" id="o9" /></message></forwarded></result></message>',
    # An error whose application condition is in the stanza's namespace (written without a namespace).
    '<message type="error" from="bob@localhost" id="xc-9"><error type="cancel" by="localhost">'
    '<service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" /><own-condition /></error></message>',
    '<iq type="result" from="bob@localhost/phone" id="d1">'
    '<query xmlns="http://jabber.org/protocol/disco#info">'
    '<identity category="client" type="pc" /><feature var="urn:xmpp:receipts" /></query></iq>',
    '<presence from="bob@localhost/phone" type="unavailable"><status>gone &amp; back</status></presence>',
]
# Repeated and odd payloads: the first body, thread, error and marker count, the last receipt, origin-id,
# reply and delay; a stanza-id without id is ignored; MUC, PubSub and disco payloads in every place.
EXTRA = [
    '<message from="bob@localhost/phone" id="d1"><body>first</body><body>second</body><thread>t1</thread>'
    '<thread>t2</thread><received xmlns="urn:xmpp:receipts" id="r1" />'
    '<received xmlns="urn:xmpp:receipts" id="r2" />'
    '<acknowledged xmlns="urn:xmpp:chat-markers:0" id="k1" />'
    '<displayed xmlns="urn:xmpp:chat-markers:0" id="k2" />'
    '<origin-id xmlns="urn:xmpp:sid:0" id="o1" /><origin-id xmlns="urn:xmpp:sid:0" id="o2" />'
    '<stanza-id xmlns="urn:xmpp:sid:0" by="x" /><stanza-id xmlns="urn:xmpp:sid:0" id="s1" />'
    '<reply xmlns="urn:xmpp:reply:0" to="a" id="p1" /><reply xmlns="urn:xmpp:reply:0" id="p2" />'
    '<delay xmlns="urn:xmpp:delay" stamp="2026-01-01T12:00:00" /><delay xmlns="urn:xmpp:delay" from="h" />'
    '<composing xmlns="http://jabber.org/protocol/chatstates" />'
    '<gone xmlns="http://jabber.org/protocol/chatstates" />'
    '<unknown xmlns="http://jabber.org/protocol/chatstates" /><markable xmlns="urn:xmpp:chat-markers:0" />'
    '<request xmlns="urn:xmpp:receipts" /></message>',
    '<message type="error" from="bob@localhost" id="e2"><error type="wait" by="h"><text '
    'xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">t</text><resource-constraint '
    'xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" /><blocked xmlns="urn:xmpp:blocking:errors" />'
    '<x xmlns="urn:example" /></error><error type="cancel" /></message>',
    '<presence from="room@conference.localhost/bob" type="unavailable">'
    '<x xmlns="http://jabber.org/protocol/muc#user">'
    '<status code="110" /><status code="x" /><status code="303" />'
    '<item jid="bob@localhost/phone" nick="bob2" '
    'role="none" affiliation="member" /></x><show>dnd</show><show>away</show>'
    '<priority>-129</priority></presence>',
    '<presence from="room@conference.localhost/carol"><x xmlns="http://jabber.org/protocol/muc#user">'
    '<status code="201" /></x><priority> 7 </priority></presence>',
    '<iq type="result" from="pubsub.localhost" id="p1"><pubsub xmlns="http://jabber.org/protocol/pubsub">'
    '<configure /><publish node="incidents"><item id="i1" /><item /></publish></pubsub></iq>',
    '<message from="pubsub.localhost" id="p2"><event xmlns="http://jabber.org/protocol/pubsub#event">'
    '<other xmlns="urn:example" /><items node="n"><retract id="r1" />'
    '<item id="i2" /></items></event></message>',
    '<message from="pubsub.localhost" id="p3">'
    '<event xmlns="http://jabber.org/protocol/pubsub#event" /></message>',
    '<message to="alice@localhost/adapter" from="alice@localhost"><result xmlns="urn:xmpp:mam:2" id="a2" />'
    '<result xmlns="urn:xmpp:mam:2" queryid="q2"><forwarded xmlns="urn:xmpp:forward:0"><message '
    'xmlns="jabber:client" id="m1"><received xmlns="urn:xmpp:receipts" id="x1" /></message></forwarded>'
    '</result>'
    '</message>',
    '<iq type="result" id="d2">'
    '<query xmlns="http://jabber.org/protocol/disco#info"><feature var="muc_semianonymous" />'
    '<feature /><identity category="conference" /></query>'
    '<query xmlns="http://jabber.org/protocol/disco#info" />'
    '</iq>',
    '<message><body /><x xmlns="jabber:client"><body>nested</body></x></message>',
    '<presence />',
]
# What the serialisation would not give back unchanged: a namespace-less child (merges with the implicit
# namespace), a carriage return in text, a line feed in an attribute, a prefixed namespace slixmpp writes
# without declaring it.
UNFAITHFUL = [
    '<message from="bob@localhost/phone" id="n1"><body xmlns="">hidden</body></message>',
    '<message from="bob@localhost/phone" id="n2"><body>line&#13;break</body></message>',
    '<message from="bob@localhost/phone" id="n3&#10;x"><body>x</body></message>',
    '<message from="bob@localhost/phone" id="n4"><x xmlns="http://etherx.jabber.org/streams" /></message>',
    # A carriage return in a tail, deeper down, or in the stanza's own text; a tab in a child's attribute.
    '<message from="bob@localhost/phone" id="n5"><body>x</body>a&#13;b</message>',
    '<message from="bob@localhost/phone" id="n6"><x xmlns="urn:example"><y><z />&#13;</y></x></message>',
    '<message from="bob@localhost/phone" id="n7">&#13;<body>x</body></message>',
    '<message from="bob@localhost/phone" id="n8"><x xmlns="urn:example"><y a="1&#9;2" /></x></message>',
]


def _stream() -> ClientXMPP:
    return ClientXMPP("alice@localhost/adapter", "secret")


def _received(stream: ClientXMPP, xml: str) -> Any:
    """The stanza as slixmpp hands it to a handler: parsed inside the jabber:client stream."""
    tree = ET.fromstring(f"<stream xmlns='jabber:client'>{xml}</stream>")[0]
    kind = Presence if tree.tag.endswith("presence") else Message
    return kind(stream=stream, xml=tree)


@pytest.mark.parametrize("xml", CAPTURED + MORE + EXTRA)
def test_the_tree_gives_the_view_parsing_its_text_gives(xml: str) -> None:
    stanza = _received(_stream(), xml)
    raw = str(stanza)
    view = view_of_tree(stanza.xml, raw)
    assert view is not None
    assert view == parse_stanza(raw)


@pytest.mark.parametrize("xml", UNFAITHFUL)
def test_a_tree_its_text_would_not_give_back_is_parsed_from_the_text(xml: str) -> None:
    stanza = _received(_stream(), xml)
    assert view_of_tree(stanza.xml, str(stanza)) is None


def _nested(levels: int) -> str:
    return "<message>" + "<x>" * (levels - 1) + "</x>" * (levels - 1) + "</message>"


@pytest.mark.parametrize(
    ("xml", "reason"),
    [
        (_nested(MAX_DEPTH + 1), "nested deeper"),
        ("<message>" + "<x/>" * MAX_ELEMENTS + "</message>", "more than"),
        ("<message><body>" + "é" * (MAX_STANZA_BYTES // 2 + 1) + "</body></message>", "larger than"),
        ("<message><body>" + "x" * (MAX_STANZA_BYTES + 1) + "</body></message>", "larger than"),
    ],
)
def test_hostile_stanzas_get_no_view_and_their_text_is_refused(xml: str, reason: str) -> None:
    stanza = _received(_stream(), xml)
    raw = str(stanza)
    assert view_of_tree(stanza.xml, raw) is None
    with pytest.raises(StanzaRejected, match=reason):
        parse_stanza(raw)


def test_the_limits_on_the_tree_are_exact() -> None:
    stream = _stream()
    deepest = _received(stream, _nested(MAX_DEPTH))
    assert view_of_tree(deepest.xml, str(deepest)) is not None
    most = _received(stream, "<message>" + "<x/>" * (MAX_ELEMENTS - 1) + "</message>")
    assert view_of_tree(most.xml, str(most)) is not None


def test_the_provider_hands_the_view_on_and_the_pipeline_refuses_what_has_none() -> None:
    stream = _stream()
    emitted: list[NativeEvent] = []

    def emit(kind: str, raw: str | None = None, stanza_id: str | None = None, view: Any = None) -> None:
        emitted.append(NativeEvent(kind, "a", datetime.now(UTC), raw, stanza_id, view=view))

    inbound = InboundStanzas(SessionTuning(), SessionState(), lambda: cast(Any, stream), emit,
                             cast(Any, None), lambda _work: None)
    inbound.on_message(_received(stream, captured_stanzas.RECEIPT))
    inbound.on_message(_received(stream, _nested(MAX_DEPTH + 1)))
    receipt, deep = emitted
    assert receipt.view is not None and receipt.view == parse_stanza(str(receipt.raw))
    assert deep.view is None

    dead: list[str] = []
    with Classifier(load_policy()) as classifier:
        commands = CommandTable.from_mapping(classifier.policy.commands)
        pipeline = EvidencePipeline(classifier, commands, InMemoryOutboundIndex(), lambda _o: None,
                                    lambda _e, reason: dead.append(reason))
        assert pipeline.handle(receipt)
        assert pipeline.handle(deep) == []
    assert dead == [f"nested deeper than {MAX_DEPTH} elements"]


ODD_TEXT = [
    '<message from="bob@localhost/phone" id="q&amp;&lt;&gt;&apos;&quot;"><body>a &amp; b &lt; c &gt; d \' " e'
    "</body> tail <x xmlns='urn:example'>in<y>deeper</y>out</x></message>",
    '<message xml:lang="de" from="bob@localhost/phone" id="e"><body /><thread></thread>'
    '<x xmlns="urn:example" xmlns:p="urn:other" p:attr="dropped" plain="kept" /></message>',
    '<presence from="bob@localhost/phone"><show>away</show><priority>5</priority>'
    '<c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="n" ver="v=" /></presence>',
]


@pytest.mark.parametrize("xml", CAPTURED + MORE + UNFAITHFUL + ODD_TEXT
                         + [_nested(MAX_DEPTH), _nested(MAX_DEPTH + 5)])
def test_the_text_of_a_received_stanza_is_slixmpps_to_the_byte(xml: str) -> None:
    stanza = _received(_stream(), xml)
    assert stanza_text(stanza) == str(stanza)
    cdata = _stream()
    cdata.use_cdata = True
    in_cdata = _received(cdata, xml)
    assert stanza_text(in_cdata) == str(in_cdata)


def _reference_unfaithful(root: ET.Element) -> bool:
    """The first tree walk's answer (one element at a time), kept to check the faster one against."""
    count = 0
    pending = [(root, 1)]
    while pending:
        element, depth = pending.pop()
        count += 1
        tag = element.tag
        if depth > MAX_DEPTH or count > MAX_ELEMENTS or tag[:1] != "{" or tag.startswith(PREFIXED_NAMESPACES):
            return True
        if (element.text and "\r" in element.text) or (element.tail and "\r" in element.tail):
            return True
        if any("\r" in value or "\n" in value or "\t" in value for value in element.attrib.values()):
            return True
        pending.extend((child, depth + 1) for child in element)
    return False


def test_every_awkward_message_gets_the_parsed_view_or_none_exactly_when_its_tree_is_not_faithful() -> None:
    stream = _stream()
    texts = [case.text for case in awkward_messages()] + CAPTURED + MORE + EXTRA + UNFAITHFUL + ODD_TEXT
    texts += [_nested(MAX_DEPTH), _nested(MAX_DEPTH + 1), "<message>" + "<x/>" * MAX_ELEMENTS + "</message>"]
    nones = 0
    for xml in texts:
        stanza = _received(stream, xml)
        raw = str(stanza)
        view = view_of_tree(stanza.xml, raw)
        assert (view is None) == (not within_size(raw) or _reference_unfaithful(stanza.xml)), xml[:200]
        if view is None:
            nones += 1
        else:
            assert view == parse_stanza(raw), xml[:200]
    assert 0 < nones < len(texts)


def test_a_stanza_the_pipeline_read_is_redacted_without_parsing_it_again_to_the_same_text() -> None:
    """``well_formed`` (the recorder passes it for an observation with a view) skips only the parse that
    proves the text well-formed: every text the pipeline reads (a view of its tree, or ``parse_stanza`` of
    it) is redacted to the same text with it as without."""
    stream = _stream()
    texts = [case.text for case in awkward_messages()] + CAPTURED + MORE + EXTRA + UNFAITHFUL + ODD_TEXT
    read = clean = 0
    for xml in texts:
        stanza = _received(stream, xml)
        raw = stanza_text(stanza)
        if view_of_tree(stanza.xml, raw) is None:
            try:
                parse_stanza(raw)
            except StanzaRejected:
                continue
        read += 1
        redacted = redact_stanza(raw)
        clean += redacted == raw
        assert redact_stanza(raw, well_formed=True) == redacted, xml[:200]
    assert read > 600 and 0 < clean < read


def test_a_view_made_without_its_init_is_the_one_its_init_makes() -> None:
    view = parse_stanza(captured_stanzas.REPLY)
    values = {name: getattr(view, name) for name in StanzaView.__dataclass_fields__ if getattr(view, name)}
    made = new_view(values)
    built = StanzaView(**values)  # type: ignore[arg-type]
    assert made == built and hash(made) == hash(built)
    assert vars(made) == vars(built) and repr(made) == repr(built)
    assert new_view({"name": "iq"}) == StanzaView(name="iq")
    made_id, built_id = new_stanza_id("s1", None), StanzaIdView(id="s1", by=None)
    assert made_id == built_id and hash(made_id) == hash(built_id) and vars(made_id) == vars(built_id)
