"""Reconstruct from the account's XEP-0313 archive (§7.7, §30): query it for a message or a time range;
what it finds goes through the pipeline as archive evidence (reconstructability, never awareness)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from xmpp_connect.api.problems import FieldError, Problem, not_found
from xmpp_connect.config.settings import ServiceConfig, TenantConfig
from xmpp_connect.model.evidence import EvidenceEvent
from xmpp_connect.providers.archive import ArchiveQuery, ArchiveResult
from xmpp_connect.store.cursor import encode_cursor
from xmpp_connect.store.sql import SqlStore
from xmpp_connect.xmpp.jids import bare

ARCHIVE_MATCH = "archive_match"
CLOCK_SKEW = timedelta(seconds=5)
"""How far before the message's creation the archive is read (the server's clock may differ)."""
MAX_PAGES = 50


class ArchiveProvider(Protocol):
    async def query_archive(self, query: ArchiveQuery) -> ArchiveResult: ...


class ArchiveService:
    """Mixed into AdapterService: uses its config, store and providers."""

    config: ServiceConfig
    store: SqlStore
    providers: Mapping[str, Any]

    async def reconstruct(self, tenant: TenantConfig, body: Mapping[str, Any]) -> dict[str, Any]:
        """Query the archive for ``xmpp_message_id``'s conversation, or from ``since`` (optionally ``with``
        one JID) through ``account_ref``; returns the query's outcome and the archive evidence found."""
        message_id = body.get("xmpp_message_id")
        if message_id is not None:
            account_ref, query = self._message_query(tenant, message_id, body)
        else:
            account_ref, query = self._range_query(tenant, body)
        provider: ArchiveProvider | None = self.providers.get(account_ref)
        if provider is None or not hasattr(provider, "query_archive"):
            raise Problem(
                409, "archive-unavailable", f"Account {account_ref} has no message archive to query."
            )
        position = self.store.last_position(tenant.id)
        result = await provider.query_archive(query)
        await self.store.durable()
        found = (
            [e for e in self.store.evidence_for_message(tenant.id, message_id) if _is_match(e)]
            if message_id is not None
            else self._matches_after(tenant.id, position)
        )
        return {
            "query_id": result.query_id,
            "account_ref": account_ref,
            "pages": result.pages,
            "complete": result.complete,
            "error_condition": result.error_condition,
            "archive_evidence": [_entry(e) for e in found],
        }

    def _message_query(
        self, tenant: TenantConfig, message_id: Any, body: Mapping[str, Any]
    ) -> tuple[str, ArchiveQuery]:
        if not isinstance(message_id, str) or not message_id:
            raise _invalid("xmpp_message_id", "a message id string is required")
        message = self.store.get_message(tenant.id, message_id)
        attempts = self.store.list_attempts(tenant.id, message_id)
        if message is None or not attempts:
            raise not_found("message")
        attempt = attempts[-1]
        start = message.created_at - CLOCK_SKEW
        pages = _max_pages(body)
        if attempt.message_type == "groupchat":
            return attempt.account_ref, ArchiveQuery(
                start=start, archive_jid=bare(attempt.to_jid), max_pages=pages
            )
        return attempt.account_ref, ArchiveQuery(with_jid=bare(attempt.to_jid), start=start, max_pages=pages)

    def _range_query(self, tenant: TenantConfig, body: Mapping[str, Any]) -> tuple[str, ArchiveQuery]:
        since = body.get("since")
        try:
            start = datetime.fromisoformat(since) if isinstance(since, str) else None
        except ValueError:
            start = None
        if start is None or start.tzinfo is None:
            raise _invalid("since", "xmpp_message_id, or an ISO 8601 date-time with offset, is required")
        with_jid = body.get("with")
        if with_jid is not None and (not isinstance(with_jid, str) or "@" not in with_jid):
            raise _invalid("with", "a bare JID is required")
        account_ref = body.get("account_ref", tenant.accounts[0] if tenant.accounts else None)
        if account_ref not in tenant.accounts:
            raise Problem(404, "not-found", "No such account for this tenant.",
                          [FieldError("account_ref", "not an account of this tenant")])
        return str(account_ref), ArchiveQuery(with_jid=with_jid, start=start, max_pages=_max_pages(body))

    def _matches_after(self, tenant_id: str, position: int) -> list[EvidenceEvent]:
        found: list[EvidenceEvent] = []
        cursor = encode_cursor(position)
        while True:
            page = self.store.events_page(tenant_id, cursor=cursor, limit=500, include_internal=True)
            found.extend(e for e in page.events if _is_match(e))
            if not page.events:
                return found
            cursor = page.next_cursor


def _is_match(event: EvidenceEvent) -> bool:
    return event.fact.get("kind") == ARCHIVE_MATCH


def _entry(event: EvidenceEvent) -> dict[str, Any]:
    return {**event.to_dict(), "archive_correlated": event.fact.get("correlated") is True}


def _max_pages(body: Mapping[str, Any]) -> int:
    pages = body.get("max_pages", 20)
    if isinstance(pages, float) and pages.is_integer():
        pages = int(pages)  # JSON 35.0 is the integer 35 (JSON Schema reads it so too)
    if isinstance(pages, bool) or not isinstance(pages, int) or not 1 <= pages <= MAX_PAGES:
        raise _invalid("max_pages", f"an integer from 1 to {MAX_PAGES}")
    return pages


def _invalid(field: str, message: str) -> Problem:
    return Problem(422, "invalid-parameter", "The archive query is not valid.", [FieldError(field, message)])
