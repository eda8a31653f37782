"""A native event: what a provider observed (§23), with the raw stanza when there is one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from xmpp_connect.xmpp.stanzas import StanzaView


@dataclass(frozen=True)
class NativeEvent:
    """One observation by a provider.

    ``kind`` is a §23 native event group (``stanza_received``, ``message_sent``, ``sm_ack``,
    ``acceptance_unknown``, ``stream_connected``, ``stream_disconnected``, ``stream_error``,
    ``authenticated``, ``authentication_failed``, ``tls_failed``, ``capabilities``, ...).
    ``raw`` is the stanza XML for inbound stanzas and for events about one outbound stanza. ``view`` is
    what ``parse_stanza(raw)`` gives, when the provider read it from its stream's tree already (the pipeline
    then does not parse ``raw`` again).
    """

    kind: str
    account: str
    observed_at: datetime
    raw: str | None = None
    stanza_id: str | None = None
    detail: dict[str, object] = field(default_factory=dict)
    view: StanzaView | None = field(default=None, compare=False, repr=False)
