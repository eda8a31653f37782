"""GET /xmpp/endpoints/{id}: an endpoint the adapter knows (a send's target, or one registered with a
tracking context), with its suppression state and its tracking context (§4.2, §9.4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from xmpp_connect.config.settings import ServiceConfig, TenantConfig
from xmpp_connect.model.evidence import endpoint_ref
from xmpp_connect.model.tracking import TrackingContext
from xmpp_connect.store.records import XmppEndpoint
from xmpp_connect.store.sql import SqlStore


class EndpointService:
    """Mixed into AdapterService: uses its config and store."""

    config: ServiceConfig
    store: SqlStore

    def endpoint(self, tenant: TenantConfig, endpoint_id: str) -> dict[str, Any] | None:
        """The endpoint by ``ep_`` reference or JID (its bare JID's endpoint); None when the tenant has none.
        With metadata-only privacy the JID is left out, as everywhere evidence is served."""
        if not endpoint_id.startswith("ep_") and "@" not in endpoint_id:
            return None
        ref = endpoint_id if endpoint_id.startswith("ep_") else endpoint_ref(tenant.id, endpoint_id)
        found = self.store.get_endpoint(tenant.id, ref)
        if found is None:
            return None
        return _served(found, self.store.options.clock(), hide_jid=self.config.privacy.metadata_only)


def _served(endpoint: XmppEndpoint, now: datetime, hide_jid: bool) -> dict[str, Any]:
    tracking = TrackingContext.from_metadata(endpoint.metadata)
    return {
        "endpoint_ref": endpoint.endpoint_id,
        "endpoint_type": endpoint.endpoint_type,
        "bare_jid": None if hide_jid else endpoint.bare_jid,
        "verification_state": endpoint.verification_state,
        "suppression_state": endpoint.suppression_state,
        "tracking_context": None if tracking is None else {
            "ids": dict(tracking.ids),
            "registered_at": tracking.registered_at.isoformat() if tracking.registered_at else None,
            "expires_at": tracking.expires_at.isoformat() if tracking.expires_at else None,
            "live": tracking.live_at(now),
        },
    }
