"""Per-resource presence, roster subscription, client capabilities and room occupants, as context (§15,
§18), never as proof."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from xmpp_connect.facts.outbound_index import conversation_of
from xmpp_connect.xmpp.stanzas import room_anonymity

SUBSCRIPTIONS = frozenset({"none", "to", "from", "both"})
PRESENCE_VISIBLE_SUBSCRIPTIONS = frozenset({"to", "both"})
"""Subscription states under which the server shows us the contact's presence (RFC 6121 §4)."""


def is_availability_evidence(jid: str, availability: str, subscription: str | None) -> bool:
    """Whether a presence says something about the contact's availability (§15). A bare ``unavailable``
    from a contact whose presence we may not see (subscription none or from, e.g. while our request is
    pending) is the server's answer about the subscription, not the contact going offline."""
    if availability != "unavailable" or "/" in jid:
        return True
    return subscription not in ("none", "from")


@dataclass(frozen=True)
class ResourcePresence:
    """The last presence seen from one full JID."""

    full_jid: str
    availability: str
    priority: int | None
    status_text: str | None
    observed_at: datetime


class PresenceTracker:
    """Presence per bare JID and resource, roster subscription per bare JID, disco features per JID.
    ``version`` moves with every change, so a reader may keep what it derived while it stays."""

    def __init__(self) -> None:
        self.version = 0
        self._resources: dict[str, dict[str, ResourcePresence]] = {}
        self._seen: dict[str, set[str]] = {}
        self._subscriptions: dict[str, str] = {}
        self._features: dict[str, frozenset[str]] = {}

    def observe(
        self,
        full_jid: str,
        availability: str,
        observed_at: datetime,
        priority: int | None = None,
        status_text: str | None = None,
    ) -> ResourcePresence:
        """Record a presence; ``availability`` is available/unavailable/away/xa/dnd/chat."""
        self.version += 1
        bare = conversation_of(full_jid)
        seen = ResourcePresence(full_jid, availability, priority, status_text, observed_at)
        resources = self._resources.setdefault(bare, {})
        if availability == "unavailable" and "/" not in full_jid:
            for resource in list(resources):
                resources[resource] = ResourcePresence(
                    resources[resource].full_jid, "unavailable", None, status_text, observed_at
                )
        else:
            resources[full_jid] = seen
        return seen

    def set_subscription(self, bare_jid: str, subscription: str) -> None:
        known = subscription if subscription in SUBSCRIPTIONS else "unknown"
        self.version += 1
        self._subscriptions[conversation_of(bare_jid)] = known

    def subscription(self, jid: str) -> str | None:
        return self._subscriptions.get(conversation_of(jid))

    def resources(self, jid: str) -> dict[str, ResourcePresence]:
        """Every resource of the account seen so far, available or not."""
        return dict(self._resources.get(conversation_of(jid), {}))

    def available_resources(self, jid: str) -> frozenset[str]:
        """Full JIDs of the account's resources whose last presence was not unavailable."""
        return frozenset(
            full for full, seen in self._resources.get(conversation_of(jid), {}).items()
            if seen.availability != "unavailable"
        )

    def note_seen(self, full_jid: str) -> None:
        """A resource that answered one of our stanzas (a receipt or marker the server stamped with its
        full JID): known to exist, though its availability is not presence evidence."""
        if "/" in full_jid:
            seen = self._seen.setdefault(conversation_of(full_jid), set())
            if full_jid not in seen:
                self.version += 1
                seen.add(full_jid)

    def known_resources(self, jid: str) -> frozenset[str]:
        """Full JIDs of the account ever seen in presence or answering one of our stanzas."""
        bare = conversation_of(jid)
        resources = frozenset(self._resources.get(bare, ()))
        seen = self._seen.get(bare)
        return resources | seen if seen else resources

    def is_available(self, jid: str) -> bool | None:
        """True/False once any presence of the account was seen; None while unknown."""
        if conversation_of(jid) not in self._resources:
            return None
        if "/" in jid:
            seen = self._resources[conversation_of(jid)].get(jid)
            return None if seen is None else seen.availability != "unavailable"
        return bool(self.available_resources(jid))

    def set_features(self, jid: str, features: frozenset[str]) -> None:
        """What a JID (usually a full JID) advertised in disco#info."""
        self.version += 1
        self._features[jid] = features

    def supports(self, jid: str, feature: str) -> bool | None:
        """Whether the client(s) at ``jid`` advertise ``feature``.

        For a full JID, that client's answer. For a bare JID, True when any discovered resource advertises
        it, False when every discovered resource (the available ones, once presence is known) does not,
        None when nothing was discovered.
        """
        return self.supports_each(jid, (feature,))[0]

    def supports_each(self, jid: str, features: tuple[str, ...]) -> tuple[bool | None, ...]:
        """``supports`` for each of ``features``, the discovered clients at ``jid`` looked up once."""
        answers = self._answers(jid)
        if not answers:
            return (None,) * len(features)
        return tuple(any(feature in advertised for advertised in answers) for feature in features)

    def _answers(self, jid: str) -> list[frozenset[str]]:
        """What the client(s) at ``jid`` advertised: a full JID's own answer, or those of a bare JID's
        discovered resources (the available ones, once presence is known)."""
        if "/" in jid:
            features = self._features.get(jid)
            return [] if features is None else [features]
        if not self._features:
            return []
        bare = conversation_of(jid)
        candidates = (
            self.available_resources(jid) if bare in self._resources
            else {full for full in self._features if conversation_of(full) == bare}
        )
        return [self._features[full] for full in candidates if full in self._features]


@dataclass(frozen=True)
class Occupant:
    """The last MUC presence of one occupant (``room@service/nick``); ``real_jid`` only where the room
    exposes it to us (non-anonymous rooms, or to moderators)."""

    occupant_jid: str
    real_jid: str | None
    role: str | None
    affiliation: str | None
    available: bool
    observed_at: datetime


class RoomRoster:
    """Occupants and disco features per room (§18), from MUC presence and disco#info. Occupant data is kept
    only as long as the process runs (§28: no overcollection). ``version`` moves with every change."""

    def __init__(self) -> None:
        self.version = 0
        self._occupants: dict[str, dict[str, Occupant]] = {}
        self._features: dict[str, frozenset[str]] = {}

    def observe(self, occupant_jid: str, real_jid: str | None, role: str | None, affiliation: str | None,
                available: bool, observed_at: datetime) -> Occupant:
        """Record an occupant's presence; a real JID seen earlier is kept when a later presence omits it."""
        self.version += 1
        room = conversation_of(occupant_jid)
        occupants = self._occupants.setdefault(room, {})
        earlier = occupants.get(occupant_jid)
        known_jid = real_jid or (earlier.real_jid if earlier is not None else None)
        seen = Occupant(occupant_jid, known_jid, role, affiliation, available, observed_at)
        occupants[occupant_jid] = seen
        return seen

    def occupants(self, room_jid: str) -> dict[str, Occupant]:
        """The occupants present now, by occupant JID."""
        return {jid: seen for jid, seen in self._occupants.get(conversation_of(room_jid), {}).items()
                if seen.available}

    def real_jid(self, occupant_jid: str) -> str | None:
        seen = self._occupants.get(conversation_of(occupant_jid), {}).get(occupant_jid)
        return None if seen is None else seen.real_jid

    def set_features(self, room_jid: str, features: frozenset[str]) -> None:
        """What the room advertised in disco#info (anonymity, members-only, password, stable ids, MAM)."""
        self.version += 1
        self._features[conversation_of(room_jid)] = features

    def is_room(self, jid: str) -> bool:
        """The bare JID is a room this account joined, discovered or saw occupants of."""
        room = conversation_of(jid)
        return room in self._features or room in self._occupants

    def anonymity(self, room_jid: str) -> str | None:
        """non_anonymous / semi_anonymous / fully_anonymous / unknown from disco; None before discovery."""
        features = self._features.get(conversation_of(room_jid))
        return None if features is None else room_anonymity(features)
