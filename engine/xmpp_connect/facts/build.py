"""Stanza view + correlation context -> one flat fact (the vocabulary of spec/facts.schema.json).

kind, first match wins:
  stanza_error         any stanza with type='error'
  capabilities         iq result carrying a disco#info query
  pubsub_published     iq result carrying <pubsub><publish/>; pubsub_items_fetched for <pubsub><items/>
  muc_occupant         presence with a MUC user <x/>, or from the room the outbound stanza went to
  presence             any other presence
  archive_match        message carrying a XEP-0313 archive result (the archived message is what it is about)
  receipt              message with <received xmlns='urn:xmpp:receipts'/>
  marker               message with a XEP-0333 displayed/received/acknowledged (muc_marker when groupchat)
  pubsub_notification  message with a pubsub#event <items/>
  muc_reflection       groupchat whose id or origin-id is the outbound stanza's (our message, echoed)
  muc_history          other groupchat with a delay stamp (history replayed on join)
  chat_state           message with a chat state and no body
  muc_message          groupchat with a body from an occupant (room/nick); echoes are spotted via ctx.outbound
  inbound_message      any other message with a body
Anything else (iq get/set, room subject or notice, empty message) raises NotEvidence.

Fields: correlated is true when the id the stanza refers to (receipt id, else the receipt's own id as in
XEP-0184 before 1.1; marker id; error stanza id; iq id; echo id; PubSub item id, notified or fetched)
equals ctx.outbound's stanza_id, origin_id or stable_id; a marker fact built with ctx.marker_inferred
(XEP-0333 cumulative coverage of an earlier stanza, see markers.py) is correlated with ctx.outbound by
that inference. A reply is tied (reply_via) by a XEP-0461 reference to those ids, else by a <thread>
equal to them (outbound threads default to the stanza id), else as ctx.reply_via says (the correlator's
thread/conversation match), else none; it is correlated when tied and ctx.outbound is known. A XEP-0461
reference to any other id is ``unknown_reference`` and never correlated: an explicit reference to something
else is not re-attributed by a guess. context_registered (inbound_message only) is ctx.context_registered: the
correlator looks up the sender's tracking context only for a message tied to none of ours.
sender_resource_known is absent when nothing tells (no resource of the addressee seen, its presence not
visible to us); sender_is_addressed_resource is set only when the outbound stanza went to a full JID.
Sender fields compare bare JIDs case-insensitively (``jids.bare``) and are omitted when the stanza has no
``from``. error_condition is the defined condition in snake_case (``unknown`` when missing or undefined).
command is ``commands.classify(sanitize_text(body))``. presence_show is ``unavailable`` for
type='unavailable', else the <show/> value, else ``available``; omitted for subscription presences.
cap_receipts/cap_markers come from disco features on capabilities facts, else from ctx.
occupant_mapping_reliable needs a non-anonymous room and the occupant's real JID (MUC item jid or
ctx.occupant_real_jid). An archive_match fact describes the archived message (its id, type and sender;
delayed when the archive stamped it), not the MAM result wrapper, which always comes from our own account.
Unknown context values (None) are omitted, never guessed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from xmpp_connect.facts.presence import PRESENCE_VISIBLE_SUBSCRIPTIONS, is_availability_evidence
from xmpp_connect.model.correlation import CorrelationContext, OutboundRecord
from xmpp_connect.policy.commands import CommandTable, sanitize_text
from xmpp_connect.policy.paths import default_policy_dir
from xmpp_connect.policy.vocabulary import Vocabulary
from xmpp_connect.xmpp import jids
from xmpp_connect.xmpp.jids import is_valid_jid
from xmpp_connect.xmpp.stanzas import ROOM_ANONYMITY_FEATURES, StanzaView, parse_stanza

JID_CACHE_SIZE = 1024
"""How many JIDs' bare form, normal form and resource are kept computed: a fact compares the sender's and
the addressee's several times, and the same few JIDs answer message after message (as many as the
validity check keeps, jids.VALIDITY_CACHE_SIZE: a JID may be 3 KiB)."""
CHECKED_FACTS_SIZE = 4096
"""How many distinct facts that passed the vocabulary check are remembered."""
_CHECKED_FACTS: set[tuple[tuple[tuple[str, Any], ...], tuple[type, ...]]] = set()
bare = lru_cache(maxsize=JID_CACHE_SIZE)(jids.bare)
normalize = lru_cache(maxsize=JID_CACHE_SIZE)(jids.normalize)
resource = lru_cache(maxsize=JID_CACHE_SIZE)(jids.resource)

FEATURE_RECEIPTS = "urn:xmpp:receipts"
FEATURE_MARKERS = "urn:xmpp:chat-markers:0"
MESSAGE_TYPES = frozenset({"chat", "normal", "headline", "groupchat", "error"})
MUC_KINDS = frozenset({"muc_reflection", "muc_occupant", "muc_marker", "muc_message", "muc_history"})
PUBSUB_KINDS = frozenset({"pubsub_notification", "pubsub_published", "pubsub_items_fetched"})
REPLY_KINDS = frozenset({"inbound_message", "muc_message", "muc_history"})
COMMAND_KINDS = frozenset({"inbound_message", "muc_message"})
SUBSCRIPTION_PRESENCE_TYPES = frozenset({"subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe"})


class NotEvidence(ValueError):
    """A well-formed stanza that says nothing the policy classifies (an iq get, a room subject, ...)."""


def _schema_path() -> Path:
    return default_policy_dir() / "spec" / "facts.schema.json"


@cache
def default_vocabulary() -> Vocabulary:
    """The fact vocabulary of the default spec/facts.schema.json."""
    return Vocabulary.from_schema(json.loads(_schema_path().read_text(encoding="utf-8")))


def check_fact(fact: Mapping[str, Any]) -> None:
    """FactError (a ValueError) when a field is not in the vocabulary or its value does not fit it. A fact
    equal to one that passed, field order and value types included, passes without a second look (the
    vocabulary is fixed; most facts repeat exactly)."""
    key = (tuple(fact.items()), tuple(map(type, fact.values())))
    try:
        if key in _CHECKED_FACTS:
            return
    except TypeError:  # an unhashable value: checked without the memo
        default_vocabulary().check_fact(dict(fact))
        return
    default_vocabulary().check_fact(dict(fact))
    if len(_CHECKED_FACTS) >= CHECKED_FACTS_SIZE:
        _CHECKED_FACTS.clear()
    _CHECKED_FACTS.add(key)


def _outbound_ids(outbound: OutboundRecord | None) -> frozenset[str]:
    if outbound is None:
        return frozenset()
    return frozenset(i for i in (outbound.stanza_id, outbound.origin_id, outbound.stable_id) if i)


def _is_echo(view: StanzaView, ctx: CorrelationContext) -> bool:
    ids = _outbound_ids(ctx.outbound)
    return bool(ids) and (view.id in ids or view.origin_id in ids)


def _from_room_occupant(view: StanzaView) -> bool:
    return view.from_attr is not None and bool(resource(view.from_attr))


def _from_outbound_room(view: StanzaView, ctx: CorrelationContext) -> bool:
    outbound = ctx.outbound
    return (
        outbound is not None
        and outbound.endpoint_type == "muc_room_jid"
        and view.from_attr is not None
        and bare(view.from_attr) == bare(outbound.to_jid)
    )


def _iq_kind(view: StanzaView) -> str:
    if view.type == "result" and view.disco_features:
        return "capabilities"
    if view.type == "result" and view.pubsub is not None and view.pubsub.action == "publish":
        return "pubsub_published"
    if view.type == "result" and view.pubsub is not None and view.pubsub.action == "items":
        return "pubsub_items_fetched"
    raise NotEvidence(f"iq type={view.type!r} carries no evidence")


def _message_kind(view: StanzaView, ctx: CorrelationContext) -> str:
    groupchat = view.type == "groupchat"
    if view.archived is not None:
        return "archive_match"
    if view.receipt_received:
        return "receipt"
    if view.marker is not None:
        return "muc_marker" if groupchat else "marker"
    if view.pubsub_event is not None and view.pubsub_event.action == "items":
        return "pubsub_notification"
    if groupchat and _is_echo(view, ctx):
        return "muc_reflection"
    has_body = bool(view.body and view.body.strip())
    if groupchat and view.delayed and has_body:
        return "muc_history"
    if view.chat_state is not None and not has_body:
        return "chat_state"
    if groupchat and has_body and _from_room_occupant(view):
        return "muc_message"
    if has_body and not groupchat:
        return "inbound_message"
    raise NotEvidence("message carries no evidence (no body, receipt, marker, chat state or event)")


def stanza_kind(view: StanzaView, ctx: CorrelationContext) -> str:
    """The fact kind a stanza is evidence of (see the module docstring); NotEvidence when none."""
    if view.type == "error":
        return "stanza_error"
    if view.name == "iq":
        return _iq_kind(view)
    if view.name == "presence":
        muc = view.muc_user is not None or _from_outbound_room(view, ctx)
        return "muc_occupant" if muc else "presence"
    return _message_kind(view, ctx)


def _message_type(view: StanzaView) -> str:
    """RFC 6121 §5.2.2: a missing or unknown type is ``normal``."""
    return view.type if view.type in MESSAGE_TYPES else "normal"


def _infer_endpoint_type(kind: str, view: StanzaView) -> str:
    if kind in MUC_KINDS or ("conference", "text") in view.disco_identities:
        return "muc_room_jid"
    if kind in PUBSUB_KINDS:
        return "pubsub_node"
    sender = view.from_attr
    if sender is None or not is_valid_jid(sender):
        return "unknown"
    if resource(sender) is not None:
        return "full_jid"
    return "bare_jid" if "@" in sender else "unknown"


def _context_fields(ctx: CorrelationContext) -> dict[str, Any]:
    """Fields every fact takes from the context: outbound-derived ones and known reachability values."""
    fact: dict[str, Any] = {}
    outbound = ctx.outbound
    if outbound is not None:
        fact["endpoint_type"] = outbound.endpoint_type
        fact["receipt_requested"] = outbound.receipt_requested
        fact["markable"] = outbound.markable
    optional = {
        "recipient_available": ctx.recipient_available,
        "subscription": ctx.subscription,
        "cap_receipts": ctx.cap_receipts,
        "cap_markers": ctx.cap_markers,
        "cap_offline_storage": ctx.cap_offline_storage,
        "room_anonymity": ctx.room_anonymity,
    }
    fact.update({name: value for name, value in optional.items() if value is not None})
    if ctx.addressee_resource_count is not None:
        fact["addressee_multi_resource"] = ctx.addressee_resource_count > 1
    fact["late"] = ctx.late
    fact["via_component"] = ctx.via_component
    fact["correlation_ambiguous"] = ctx.correlation_ambiguous
    return fact


def _sender_fields(kind: str, view: StanzaView, ctx: CorrelationContext) -> dict[str, Any]:
    fact: dict[str, Any] = {"sender_authenticated": ctx.authenticated_stream}
    sender = view.from_attr
    if sender is None:
        return fact
    if ctx.outbound is not None:
        fact["sender_is_addressee"] = bare(sender) == bare(ctx.outbound.to_jid)
        if ctx.outbound.endpoint_type == "full_jid":
            fact["sender_is_addressed_resource"] = normalize(sender) == normalize(ctx.outbound.to_jid)
    if kind in MUC_KINDS or kind in PUBSUB_KINDS:
        return fact
    known = _sender_resource_known(sender, ctx)
    if known is not None:
        fact["sender_resource_known"] = known
    if ctx.delegates:
        fact["sender_is_delegate"] = bare(sender) in {bare(jid) for jid in ctx.delegates}
    return fact


def _sender_resource_known(sender: str, ctx: CorrelationContext) -> bool | None:
    """True for a resource we saw (presence, or a receipt or marker it sent us); False when we could have
    seen it (we saw other resources, or its presence is visible to us) and did not; None (unknown) else."""
    if resource(sender) is not None and normalize(sender) in {normalize(jid) for jid in ctx.known_resources}:
        return True
    if ctx.known_resources or ctx.subscription in PRESENCE_VISIBLE_SUBSCRIPTIONS:
        return False
    return None


def _referenced_ids(kind: str, view: StanzaView) -> tuple[str | None, ...]:
    """The ids a stanza of this kind points at, to compare with the outbound stanza's ids."""
    if kind == "receipt":
        return (view.receipt_id or view.id,)
    if kind in ("marker", "muc_marker"):
        return (view.marker_id,)
    if kind in ("stanza_error", "pubsub_published"):
        return (view.id,)
    if kind == "pubsub_items_fetched" and view.pubsub is not None:
        return (view.id, *view.pubsub.item_ids)
    if kind == "muc_reflection":
        return (view.id, view.origin_id)
    if kind == "archive_match" and view.archived is not None:
        return (view.archived.id, view.archived.origin_id)
    if kind == "pubsub_notification" and view.pubsub_event is not None:
        return view.pubsub_event.item_ids
    return ()


def _reply_fields(view: StanzaView, ctx: CorrelationContext) -> dict[str, Any]:
    ids = _outbound_ids(ctx.outbound)
    if view.reply_id is not None and view.reply_id in ids:
        return {"reply_via": "reply_reference", "correlated": True}
    if view.reply_id is not None:
        return {"reply_via": "unknown_reference", "correlated": False}
    if view.thread is not None and view.thread in ids:
        return {"reply_via": "thread", "correlated": True}
    via = ctx.reply_via or "none"
    return {"reply_via": via, "correlated": ctx.outbound is not None and via in ("thread", "conversation")}


def _error_fields(view: StanzaView) -> dict[str, Any]:
    fields = default_vocabulary().fields
    error = view.error
    if error is None:
        return {"error_type": "unknown", "error_condition": "unknown", "error_blocked": False}
    condition = (error.condition or "").replace("-", "_")
    return {
        "error_type": error.type if fields["error_type"].accepts(error.type) else "unknown",
        "error_condition": condition if fields["error_condition"].accepts(condition) else "unknown",
        "error_blocked": error.blocked,
    }


def _presence_show(view: StanzaView) -> str | None:
    if view.type == "unavailable":
        return "unavailable"
    if view.type in SUBSCRIPTION_PRESENCE_TYPES:
        return None
    show = (view.presence_show or "").strip()
    return show if show in ("away", "xa", "dnd", "chat") else "available"


def _muc_fields(view: StanzaView, ctx: CorrelationContext) -> dict[str, Any]:
    real_jid = (view.muc_user.item_jid if view.muc_user else None) or ctx.occupant_real_jid
    if ctx.room_anonymity is None and real_jid is not None:
        return {}
    return {"occupant_mapping_reliable": ctx.room_anonymity == "non_anonymous" and real_jid is not None}


def _capability_fields(view: StanzaView) -> dict[str, Any]:
    fact: dict[str, Any] = {
        "cap_receipts": FEATURE_RECEIPTS in view.disco_features,
        "cap_markers": FEATURE_MARKERS in view.disco_features,
    }
    for feature, anonymity in ROOM_ANONYMITY_FEATURES.items():
        if feature in view.disco_features:
            fact["room_anonymity"] = anonymity
    return fact


def _kind_fields(
    kind: str, view: StanzaView, ctx: CorrelationContext, commands: CommandTable
) -> dict[str, Any]:
    """The fields that depend on what kind of evidence the stanza is."""
    fact: dict[str, Any] = {}
    referenced = _referenced_ids(kind, view)
    if referenced:
        ids = _outbound_ids(ctx.outbound)
        fact["correlated"] = any(i in ids for i in referenced if i)
    if kind in REPLY_KINDS:
        fact.update(_reply_fields(view, ctx))
    if kind == "inbound_message" and ctx.context_registered is not None:
        fact["context_registered"] = ctx.context_registered
    if kind in COMMAND_KINDS:
        fact["command"] = commands.classify(sanitize_text(view.body or ""))
        fact["stop_suppression_enabled"] = ctx.stop_suppression_enabled
    if kind in ("marker", "muc_marker"):
        fact["marker"] = view.marker
        fact["marker_inferred"] = ctx.marker_inferred
        if ctx.marker_inferred and ctx.outbound is not None:
            fact["correlated"] = True
    if kind == "stanza_error":
        fact.update(_error_fields(view))
    if kind == "chat_state":
        fact["chat_state"] = view.chat_state
    if kind in ("presence", "muc_occupant"):
        show = _presence_show(view)
        if show is not None:
            fact["presence_show"] = show
            if kind == "presence" and view.from_attr is not None:
                fact["presence_is_availability"] = is_availability_evidence(view.from_attr, show,
                                                                            ctx.subscription)
    if kind in ("muc_message", "muc_marker", "muc_occupant", "muc_history"):
        fact.update(_muc_fields(view, ctx))
    if kind == "capabilities":
        fact.update(_capability_fields(view))
    return fact


def fact_from_stanza(view: StanzaView, ctx: CorrelationContext, commands: CommandTable) -> dict[str, Any]:
    """The fact a parsed stanza is evidence of; NotEvidence when it is none, ValueError on a bad context."""
    kind = stanza_kind(view, ctx)
    fact: dict[str, Any] = {"kind": kind}
    about = view.archived if view.archived is not None else view
    if view.name == "message":
        fact["message_type"] = _message_type(about)
    fact.update(_context_fields(ctx))
    fact.setdefault("endpoint_type", _infer_endpoint_type(kind, about))
    fact.update(_sender_fields(kind, about, ctx))
    if view.name != "iq":
        fact["delayed"] = view.delayed or view.archive_stamp is not None
    fact.update(_kind_fields(kind, view, ctx, commands))
    check_fact(fact)
    return fact


def fact_from_xml(raw: str | bytes, ctx: CorrelationContext, commands: CommandTable) -> dict[str, Any]:
    """Parse (StanzaRejected on hostile or malformed XML) and build the fact."""
    return fact_from_stanza(parse_stanza(raw), ctx, commands)


def fact_for_event(kind: str, ctx: CorrelationContext | None = None, **fields: Any) -> dict[str, Any]:
    """A fact for a non-stanza observation (send_accepted, sm_ack, timer, stream_*, ...). Context-derived
    fields are filled from ``ctx`` (correlated is true when it names an outbound stanza); explicit ``fields``
    win. ValueError on an unknown kind, field or value."""
    fact: dict[str, Any] = {"kind": kind}
    if ctx is not None:
        fact.update(_context_fields(ctx))
        if ctx.outbound is not None:
            fact["message_type"] = ctx.outbound.message_type
            fact["correlated"] = True
    fact.update({name: value for name, value in fields.items() if value is not None})
    check_fact(fact)
    return fact
