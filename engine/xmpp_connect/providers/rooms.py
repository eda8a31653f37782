"""XEP-0045 pieces the providers share: the join presence, the owner's configuration form, and the waiter
that picks the room's answer to a join out of the presence stream."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from xmpp_connect.config.settings import RoomConfig

NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner"
NS_DATA = "jabber:x:data"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
ROOM_CONFIG_FORM = "http://jabber.org/protocol/muc#roomconfig"
STATUS_SELF = 110
STATUS_CREATED = 201


def join_element(password: str | None, history_stanzas: int | None) -> ET.Element:
    """The ``<x xmlns='…muc'/>`` a join presence carries: password and the history to replay."""
    x = ET.Element(f"{{{NS_MUC}}}x")
    if password is not None:
        ET.SubElement(x, f"{{{NS_MUC}}}password").text = password
    if history_stanzas is not None:
        ET.SubElement(x, f"{{{NS_MUC}}}history", {"maxstanzas": str(history_stanzas)})
    return x


def _field(form: ET.Element, var: str, value: str) -> None:
    field = ET.SubElement(form, f"{{{NS_DATA}}}field", {"var": var})
    ET.SubElement(field, f"{{{NS_DATA}}}value").text = value


def _flag(value: bool) -> str:
    return "1" if value else "0"


def config_query(settings: RoomConfig) -> ET.Element:
    """The owner's submitted muc#roomconfig form (XEP-0045 §10.1.3); submitting it unlocks a new room."""
    query = ET.Element(f"{{{NS_MUC_OWNER}}}query")
    form = ET.SubElement(query, f"{{{NS_DATA}}}x", {"type": "submit"})
    _field(form, "FORM_TYPE", ROOM_CONFIG_FORM)
    _field(form, "muc#roomconfig_whois", "anyone" if settings.non_anonymous else "moderators")
    _field(form, "muc#roomconfig_membersonly", _flag(settings.members_only))
    _field(form, "muc#roomconfig_moderatedroom", _flag(settings.moderated))
    _field(form, "muc#roomconfig_persistentroom", _flag(settings.persistent))
    _field(form, "muc#roomconfig_publicroom", _flag(settings.public))
    _field(form, "muc#roomconfig_passwordprotectedroom", _flag(settings.password is not None))
    if settings.password is not None:
        _field(form, "muc#roomconfig_roomsecret", settings.password.reveal())
    return query


def destroy_query() -> ET.Element:
    """The owner's request to destroy a room (XEP-0045 §10.9): used for a room we created by mistake."""
    query = ET.Element(f"{{{NS_MUC_OWNER}}}query")
    ET.SubElement(query, f"{{{NS_MUC_OWNER}}}destroy")
    return query


@dataclass(frozen=True)
class JoinAnswer:
    """The room's answer to a join: our own occupant presence (status 110) or a presence error."""

    status_codes: frozenset[int]
    error_condition: str | None

    @property
    def joined(self) -> bool:
        return self.error_condition is None

    @property
    def created(self) -> bool:
        return STATUS_CREATED in self.status_codes


def status_codes(presence: ET.Element) -> frozenset[int]:
    """The MUC user status codes of a presence."""
    codes = set()
    for x in presence.findall(f"{{{NS_MUC_USER}}}x"):
        for status in x.findall(f"{{{NS_MUC_USER}}}status"):
            code = status.get("code", "")
            if code.isdigit():
                codes.add(int(code))
    return frozenset(codes)


def error_condition(stanza: ET.Element) -> str:
    """The snake_case defined condition of a stanza's ``<error/>``; ``undefined_condition`` when none."""
    for error in stanza:
        if error.tag.rpartition("}")[2] != "error":
            continue
        for child in error:
            ns, _, local = child.tag[1:].partition("}")
            if ns == NS_STANZAS and local != "text":
                return local.replace("-", "_")
    return "undefined_condition"


class JoinWaiter:
    """Pending joins by room (bare JID, lower case): the first self-presence or presence error from the room
    settles its join."""

    def __init__(self) -> None:
        self._pending: dict[str, asyncio.Future[JoinAnswer]] = {}

    def expect(self, room_jid: str) -> asyncio.Future[JoinAnswer]:
        future: asyncio.Future[JoinAnswer] = asyncio.get_running_loop().create_future()
        self._pending[room_jid.lower()] = future
        return future

    def forget(self, room_jid: str) -> None:
        self._pending.pop(room_jid.lower(), None)

    def offer(self, presence: ET.Element) -> bool:
        """Settle a pending join with this presence when it answers one; True when it did."""
        room = presence.get("from", "").split("/", 1)[0].lower()
        future = self._pending.get(room)
        if future is None or future.done():
            return False
        codes = status_codes(presence)
        if presence.get("type") == "error":
            future.set_result(JoinAnswer(codes, error_condition(presence)))
        elif STATUS_SELF in codes:
            future.set_result(JoinAnswer(codes, None))
        else:
            return False
        del self._pending[room]
        return True
