"""The account client's cheaper handler matchers decide what slixmpp's own decide, stanza by stanza."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
from slixmpp.xmlstream.matcher import MatchXPath, StanzaPath

import captured_stanzas
from xmpp_connect.providers.base import Backoff
from xmpp_connect.providers.slixmpp_matchers import (
    MatchRootAndChild,
    MatchRootTag,
    StanzaPathFirstTag,
    cheaper,
)
from xmpp_connect.providers.slixmpp_session import AccountClient

PLUGINS = ("xep_0030", "xep_0045", "xep_0060", "xep_0184", "xep_0198", "xep_0199", "xep_0280", "xep_0313",
           "xep_0333", "xep_0359")

STANZAS = [
    *(getattr(captured_stanzas, name) for name in dir(captured_stanzas) if name.isupper()),
    "<message><body>x</body></message>",
    "<message type='error' id='e'><error type='cancel'><item-not-found"
    " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
    "<message><body xmlns='urn:other'>not the client's body</body></message>",
    "<message><x><body>nested, not a child</body></x></message>",
    "<presence type='unavailable' from='bob@localhost/phone'/>",
    "<presence type='subscribe' from='bob@localhost'/>",
    "<iq type='get' id='p1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
    "<iq type='set' id='p2' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
    "<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='bob@localhost'/></query></iq>",
    "<iq type='get' id='d1' from='bob@localhost/phone'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    "<iq type='get' id='d2'><query xmlns='http://jabber.org/protocol/disco#items' node='n'/></iq>",
    "<iq type='result' id='d3'/>",
    "<iq type='error' id='d4'><error type='cancel'><service-unavailable"
    " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
    "<a xmlns='urn:xmpp:sm:3' h='7'/>",
    "<r xmlns='urn:xmpp:sm:3'/>",
    "<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/>",
    "<resumed xmlns='urn:xmpp:sm:3' previd='sm-1' h='3'/>",
    "<failed xmlns='urn:xmpp:sm:3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>",
    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><sm xmlns='urn:xmpp:sm:3'/>"
    "</stream:features>",
    "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
    "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
    "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>",
    "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>abc</challenge>",
    "<unknown xmlns='urn:example'/>",
]


def _client() -> AccountClient:
    client = AccountClient("alice@localhost/adapter", "secret", Backoff())
    for plugin in PLUGINS:
        client.register_plugin(plugin)
    return client


def _element(text: str) -> ET.Element:
    """A stanza as the stream's parser gives it (the stream's namespaces in scope)."""
    stream = ET.fromstring("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
                           f"{text}</stream:stream>")
    return stream[0]


def _slixmpp_matchers() -> list[Any]:
    """Every MatchXPath and StanzaPath slixmpp and the plugins register, as they built them."""
    built: list[Any] = []
    original = AccountClient.register_handler

    def keep(self: AccountClient, handler: Any, before: Any = None, after: Any = None) -> None:
        if handler.stream is None and isinstance(getattr(handler, "_matcher", None), MatchXPath | StanzaPath):
            built.append(handler._matcher)
        original(self, handler, before, after)

    AccountClient.register_handler = keep  # type: ignore[method-assign]
    try:
        _client()
    finally:
        AccountClient.register_handler = original  # type: ignore[method-assign]
    return built


MATCHERS = _slixmpp_matchers()


def test_every_registered_matcher_has_its_cheaper_equivalent() -> None:
    kinds = {type(cheaper(matcher)) for matcher in MATCHERS}
    assert {MatchRootTag, MatchRootAndChild, StanzaPathFirstTag} <= kinds
    assert len(MATCHERS) > 20


@pytest.mark.parametrize("text", STANZAS)
def test_cheaper_matchers_decide_as_slixmpp_does(text: str) -> None:
    client = _client()
    for matcher in MATCHERS:
        expected = matcher.match(client._build_stanza(_element(text)))
        assert cheaper(matcher).match(client._build_stanza(_element(text))) == expected, matcher._criteria


def test_paths_the_cheaper_matchers_do_not_take_stay_as_they_are() -> None:
    for criteria in ("{jabber:client}message/{jabber:client}x/{jabber:client}y", "{jabber:client}message/*",
                     "{jabber:client}message[@type='chat']", "{*}message", "message", "{}message"):
        matcher = MatchXPath(criteria)
        assert cheaper(matcher) is matcher


def test_the_account_client_registers_the_cheaper_matchers() -> None:
    handlers = _client()._XMLStream__handlers  # type: ignore[attr-defined]
    assert not [handler.name for handler in handlers if type(handler._matcher) in (MatchXPath, StanzaPath)]
