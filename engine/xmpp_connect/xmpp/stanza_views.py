"""The typed, read-only views of a stanza (xmpp/stanzas.py reads them from XML)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class StanzaErrorView:
    """RFC 6120 §8.3 ``<error/>``: type, defined condition, text, application-specific conditions."""

    type: str | None
    condition: str | None
    text: str | None = None
    by: str | None = None
    app_conditions: tuple[str, ...] = ()
    blocked: bool = False


@dataclass(frozen=True)
class StanzaIdView:
    """XEP-0359 ``<stanza-id/>``: an id assigned by the entity named in ``by`` (a server or a room)."""

    id: str
    by: str | None


@dataclass(frozen=True)
class MucUserView:
    """XEP-0045 ``<x xmlns='…muc#user'/>``: status codes and the occupant item."""

    status_codes: tuple[int, ...] = ()
    item_jid: str | None = None
    item_nick: str | None = None
    item_role: str | None = None
    item_affiliation: str | None = None


@dataclass(frozen=True)
class PubSubView:
    """A PubSub payload: an event notification or an IQ ``<pubsub/>`` child, with its node and item ids."""

    action: str
    node: str | None
    item_ids: tuple[str, ...] = ()
    retract_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class StanzaView:
    """What one stanza says, as far as evidence needs it. Absent parts are None, empty or False."""

    name: str
    type: str | None = None
    id: str | None = None
    from_attr: str | None = None
    to_attr: str | None = None
    body: str | None = None
    thread: str | None = None
    receipt_requested: bool = False
    receipt_received: bool = False
    receipt_id: str | None = None
    markable: bool = False
    marker: str | None = None
    marker_id: str | None = None
    origin_id: str | None = None
    stanza_ids: tuple[StanzaIdView, ...] = ()
    reply_to: str | None = None
    reply_id: str | None = None
    delayed: bool = False
    delay_stamp: datetime | None = None
    delay_from: str | None = None
    chat_state: str | None = None
    error: StanzaErrorView | None = None
    presence_show: str | None = None
    presence_priority: int | None = None
    presence_status: str | None = None
    muc_user: MucUserView | None = None
    pubsub_event: PubSubView | None = None
    pubsub: PubSubView | None = None
    disco_features: tuple[str, ...] = ()
    disco_identities: tuple[tuple[str, str], ...] = ()
    archived: StanzaView | None = None
    """XEP-0313: the archived message a MAM result carries (its own view)."""
    archive_id: str | None = None
    archive_query_id: str | None = None
    archive_stamp: datetime | None = None


_VIEW_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(StanzaView) if f.default is not dataclasses.MISSING
}


def new_view(values: dict[str, object]) -> StanzaView:
    """``StanzaView(**values)`` without its generated ``__init__`` (35 frozen attribute sets a view)."""
    view = object.__new__(StanzaView)
    view.__dict__.update(_VIEW_DEFAULTS)
    view.__dict__.update(values)
    return view


def new_stanza_id(id: str, by: str | None) -> StanzaIdView:
    """``StanzaIdView(id=id, by=by)`` without its generated ``__init__``."""
    view = object.__new__(StanzaIdView)
    view.__dict__.update(id=id, by=by)
    return view
