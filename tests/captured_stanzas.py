"""Stanzas captured from Prosody 0.12.3 through slixmpp 1.17 (str(stanza): no top-level xmlns),
shared by the parser and fact-builder tests."""

RECEIPT = (
    '<message to="alice@localhost/adapter" xml:lang="en" from="bob@localhost/phone" id="r-1">'
    '<received xmlns="urn:xmpp:receipts" id="xc-1" />'
    '<stanza-id xmlns="urn:xmpp:sid:0" by="alice@localhost" id="IjNMwsjzjCh9fulqPtbYIHah" /></message>'
)

DISPLAYED = (
    '<message xml:lang="en" type="chat" from="bob@localhost/phone" to="alice@localhost" id="m-1">'
    '<displayed xmlns="urn:xmpp:chat-markers:0" id="xc-1" />'
    '<stanza-id xmlns="urn:xmpp:sid:0" by="alice@localhost" id="_622K_sY8tsDKjTMxzuhMKgt" /></message>'
)

REPLY = (
    '<message xml:lang="en" type="chat" from="bob@localhost/phone" to="alice@localhost" id="reply-1">'
    '<body>ack</body><thread>xc-1</thread>'
    '<reply xmlns="urn:xmpp:reply:0" to="alice@localhost/adapter" id="xc-1" />'
    '<active xmlns="http://jabber.org/protocol/chatstates" /><request xmlns="urn:xmpp:receipts" />'
    '<markable xmlns="urn:xmpp:chat-markers:0" /><origin-id xmlns="urn:xmpp:sid:0" id="reply-1" />'
    '<stanza-id xmlns="urn:xmpp:sid:0" by="alice@localhost" id="l9BKopxHYVxIKsJhPmFPYlLn" /></message>'
)

MALFORMED_BOUNCE = (
    '<message type="error" from="bad@@localhost" to="alice@localhost/adapter" id="xc-3">'
    '<error type="modify"><jid-malformed xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" />'
    '<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">'
    "The destination address is invalid: bad@@localhost</text>"
    "</error></message>"
)

BLOCKED = (
    '<message type="error" from="carol@localhost" to="alice@localhost/adapter" id="xc-4">'
    '<error type="cancel"><not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" />'
    '<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">You have blocked this JID</text>'
    '<blocked xmlns="urn:xmpp:blocking:errors" /></error></message>'
)

OFFLINE_DELIVERY = (
    '<message xml:lang="en" from="alice@localhost/adapter" to="dave@localhost" type="chat" id="xc-6">'
    '<body>offline hello</body><request xmlns="urn:xmpp:receipts" />'
    '<stanza-id xmlns="urn:xmpp:sid:0" by="dave@localhost" id="W2-7iJVHpWeSjRL7Wb9k6JtE" />'
    '<delay xmlns="urn:xmpp:delay" from="localhost" stamp="2026-11-22T03:34:03Z" /></message>'
)

MUC_ECHO = (
    '<message xml:lang="en" to="alice@localhost/adapter" type="groupchat"'
    ' from="ops@conference.localhost/adapter" id="xc-7"><body>Incident 42 opened</body>'
    '<origin-id xmlns="urn:xmpp:sid:0" id="xc-7" />'
    '<markable xmlns="urn:xmpp:chat-markers:0" />'
    '<occupant-id xmlns="urn:xmpp:occupant-id:0" id="V0YYBjlLwyTq9yQXaS68fikrt+dKYBSMFx67Uth0r3k=" />'
    '<stanza-id xmlns="urn:xmpp:sid:0" by="ops@conference.localhost" id="CKoRMF5XzVzpy3Q9FYLbbOLf" />'
    "</message>"
)

PUBSUB_HEADLINE = (
    '<message to="bob@localhost" from="pubsub.localhost" type="headline" id="fY_8dWlv9QMKNwxzoG4edR2S">'
    '<event xmlns="http://jabber.org/protocol/pubsub#event"><items node="incidents"><item id="xc-10">'
    '<entry xmlns="http://www.w3.org/2005/Atom"><title>Incident 42</title></entry></item></items></event>'
    "</message>"
)

PRESENCE_AWAY = (
    '<presence to="alice@localhost" xml:lang="en" from="bob@localhost/phone">'
    "<show>away</show><priority>5</priority><status>at lunch</status></presence>"
)
