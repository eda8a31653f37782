"""A tracking context registered for an endpoint (§4.2 notification.register_tracking_context): the case,
participant and correlation ids that inbound evidence from the endpoint's bare JID is recorded with, when it
is tied to no message we sent. Kept in the endpoint's metadata under ``tracking_context``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

METADATA_KEY = "tracking_context"


@dataclass(frozen=True)
class TrackingContext:
    """The registered ids, when they were registered and until when they tie (None: no expiry)."""

    ids: Mapping[str, str] = field(default_factory=dict)
    registered_at: datetime | None = None
    expires_at: datetime | None = None

    @property
    def case_id(self) -> str | None:
        return self.ids.get("coordination_case_id")

    @property
    def participant_id(self) -> str | None:
        return self.ids.get("participant_id")

    @property
    def correlation_id(self) -> str | None:
        return self.ids.get("correlation_id")

    def live_at(self, when: datetime) -> bool:
        """Whether evidence observed at ``when`` is tied to this context: registered, and not expired."""
        return self.expires_at is None or when < self.expires_at

    def as_metadata(self) -> dict[str, Any]:
        """The endpoint metadata entry (JSON-ready)."""
        return {
            METADATA_KEY: {
                "ids": dict(self.ids),
                "registered_at": self.registered_at.isoformat() if self.registered_at else None,
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            }
        }

    @classmethod
    def registered(cls, request: Mapping[str, Any], received_at: datetime) -> TrackingContext:
        """The context a schema-checked register_tracking_context request registers: its tracking_context,
        with the request's case and participant where the context does not name them."""
        ids = {str(k): str(v) for k, v in dict(request["tracking_context"]).items()}
        for name in ("coordination_case_id", "participant_id"):
            if request.get(name) and name not in ids:
                ids[name] = str(request[name])
        expires = request.get("expires_at")
        return cls(ids, received_at, datetime.fromisoformat(expires) if expires else None)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> TrackingContext | None:
        """The context an endpoint's metadata holds, if any."""
        entry = metadata.get(METADATA_KEY)
        if not isinstance(entry, Mapping) or not isinstance(entry.get("ids"), Mapping):
            return None
        registered, expires = entry.get("registered_at"), entry.get("expires_at")
        return cls(
            {str(k): str(v) for k, v in entry["ids"].items()},
            datetime.fromisoformat(registered) if registered else None,
            datetime.fromisoformat(expires) if expires else None,
        )
