"""Raw stanza redaction and JID anonymization (§28)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from xmpp_connect.xmpp.redaction import UNPARSEABLE, JidAnonymizer, redact_stanza

KEY = b"0123456789abcdef-test-key"


def test_body_subject_html_and_error_text_are_removed_ids_and_receipts_kept():
    stanza = (
        '<message xmlns="jabber:client" id="s1" to="bob@example.net" type="chat">'
        "<subject>Salary</subject><body>secret body</body>"
        '<html xmlns="http://jabber.org/protocol/xhtml-im"><body xmlns="http://www.w3.org/1999/xhtml">'
        "<p>secret html</p></body></html>"
        '<request xmlns="urn:xmpp:receipts"/><markable xmlns="urn:xmpp:chat-markers:0"/>'
        '<origin-id xmlns="urn:xmpp:sid:0" id="o1"/>'
        '<error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>'
        '<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">echo: secret body</text></error></message>'
    )
    redacted = redact_stanza(stanza)
    assert "secret" not in redacted and "Salary" not in redacted
    for kept in ('id="s1"', "urn:xmpp:receipts", "chat-markers", 'id="o1"', "item-not-found"):
        assert kept in redacted


def test_carbon_copies_and_pubsub_payloads_are_redacted():
    carbon = (
        '<message xmlns="jabber:client"><received xmlns="urn:xmpp:carbons:2">'
        '<forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client" id="c1">'
        "<body>forwarded secret</body></message></forwarded></received></message>"
    )
    assert "forwarded secret" not in redact_stanza(carbon) and 'id="c1"' in redact_stanza(carbon)
    event = (
        '<message xmlns="jabber:client" type="headline"><event xmlns="http://jabber.org/protocol/pubsub#event">'
        '<items node="alerts"><item id="i1"><entry xmlns="http://www.w3.org/2005/Atom">payload secret</entry>'
        "</item></items></event></message>"
    )
    assert "payload secret" not in redact_stanza(event) and 'id="i1"' in redact_stanza(event)


def test_credentials_and_encrypted_payloads_are_removed():
    register = (
        '<iq type="set"><query xmlns="jabber:iq:register"><username>bob</username>'
        "<password>pw-123</password></query></iq>"
    )
    omemo = (
        '<message><encrypted xmlns="eu.siacs.conversations.axolotl"><payload>abc</payload></encrypted>'
        "<presence-status><status>in a meeting about layoffs</status></presence-status></message>"
    )
    assert "pw-123" not in redact_stanza(register)
    assert "abc" not in redact_stanza(omemo) and "layoffs" not in redact_stanza(omemo)


def test_unparseable_or_hostile_xml_is_not_stored():
    assert redact_stanza("<message><body>half") == UNPARSEABLE
    bomb = '<!DOCTYPE m [<!ENTITY a "secret">]><message><body>&a;</body></message>'
    assert redact_stanza(bomb) == UNPARSEABLE


def test_a_stanza_with_nothing_to_redact_is_kept_as_received():
    receipt = (
        "<message xmlns='jabber:client' from='a@example.net/phone' id='r1'>"
        "<received xmlns='urn:xmpp:receipts' id='xc-1'/></message>"
    )
    assert redact_stanza(receipt) == receipt
    assert redact_stanza("<message><broken") == UNPARSEABLE, "not well-formed: never stored"


def test_a_sensitive_element_spelled_with_character_references_is_still_redacted():
    xhtml = (
        '<message xmlns="jabber:client" id="m1"><html xmlns="&#104;ttp://jabber.org/protocol/xhtml-im">'
        "<p>hidden secret</p></html></message>"
    )
    assert "hidden secret" not in redact_stanza(xhtml)
    declared = '<!DOCTYPE m><message id="m2"><p>declared</p></message>'
    assert "DOCTYPE" not in redact_stanza(declared), "a declaration takes the full (defused) path"


@dataclass(frozen=True)
class _Record:
    from_jid: str
    to_jid: str
    jid: str
    note: str


def test_jid_anonymization_is_consistent_and_unreadable():
    anonymizer = JidAnonymizer(KEY)
    record = _Record("Bob@example.net/phone", "adapter@example.org", "bob@example.net", "bob@example.net")
    out = anonymizer.record(record)
    assert "bob" not in out.from_jid and "example" not in out.jid
    assert out.from_jid.split("/")[0] == out.jid  # same account, same pseudonym
    assert out.from_jid.endswith("/r-" + out.from_jid.split("/r-")[1]) and "/" not in out.to_jid
    assert out.note == record.note  # only *jid fields change
    assert JidAnonymizer(b"another-key-0123456789").jid("bob@example.net") != out.jid
    assert anonymizer.record({"room_jid": "ops@conference.example.org", "n": 1})["n"] == 1


def test_short_keys_are_refused():
    with pytest.raises(ValueError):
        JidAnonymizer(b"short")
