"""Webhook subscriptions of every tenant (from the config file and the API) and their delivery tasks; with
replicas, each subscription is delivered by the one replica holding its lease (spec/replicas.md)."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import secrets
from collections.abc import Callable
from typing import Any

from xmpp_connect.api.problems import FieldError, Problem, not_found
from xmpp_connect.config.settings import ServiceConfig, TenantConfig
from xmpp_connect.config.webhook_url import ReceiverUrlError, check_receiver_url
from xmpp_connect.sending.webhooks.delivery import SubscriptionDelivery
from xmpp_connect.sending.webhooks.retry import RetryPolicy
from xmpp_connect.store.cursor import decode_cursor, encode_cursor
from xmpp_connect.store.errors import InvalidCursor, LeaseLost
from xmpp_connect.store.sql import SqlStore
from xmpp_connect.store.webhooks import API_ORIGIN, CONFIG_ORIGIN, WebhookSubscription

log = logging.getLogger(__name__)
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CREATE_FIELDS = frozenset({"id", "url", "event_types"})
MAX_EVENT_TYPES = 100
RESTART_AFTER_FAILURE_S = 1.0
LEASE_PREFIX = "webhook:"


def lease_key(tenant_id: str, subscription_id: str) -> str:
    """The subscription's lease key among the replicas' leases: ``webhook:<tenant>/<subscription id>``."""
    return f"{LEASE_PREFIX}{tenant_id}/{subscription_id}"


def subscription_of(key: str) -> tuple[str, str] | None:
    """(tenant, subscription id) of a webhook lease key; None for any other key (an account's)."""
    if not key.startswith(LEASE_PREFIX):
        return None
    tenant_id, _, subscription_id = key.removeprefix(LEASE_PREFIX).rpartition("/")
    return tenant_id, subscription_id


def new_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class Webhooks:
    """Keeps one delivery task per subscription while running (with ``fence`` set, per subscription whose
    lease this replica holds: ``gained`` and ``losing`` start and end it); every API method is scoped to
    one tenant."""

    def __init__(
        self, config: ServiceConfig, store: SqlStore, retry: RetryPolicy | None = None,
        poll_interval: float = 0.2, concurrency: int = 16,
    ) -> None:
        self.config = config
        self.store = store
        self.retry = retry or RetryPolicy(give_up_after=config.webhooks.give_up_after_s)
        self.poll_interval = poll_interval
        self.concurrency = concurrency
        self._config_secrets = {
            (t.id, w.id): w.secret for t in config.tenants for w in t.webhooks
        }
        self._api_secrets: dict[tuple[str, str], str] = {}
        """Secrets of API-created subscriptions, read from the store once (signing must not query it)."""
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._stopped = False
        """After ``stop`` no delivery starts (with replicas, a lease may be gained before ``start``: it starts
        at once)."""
        self.fence: Callable[[str], None] | None = None
        """Set (before ``start``) when the subscriptions are shared out between replicas: raises LeaseLost
        for a lease key this replica no longer holds."""

    # -- lifecycle ---------------------------------------------------------------------------------

    def sync_config(self) -> None:
        """The config file's subscriptions in the store: new ones start at the feed's end, known ones keep
        their position, ones no longer in the file are removed."""
        for tenant in self.config.tenants:
            for hook in tenant.webhooks:
                known = self.store.get_webhook(tenant.id, hook.id)
                if known is None:
                    self.store.add_webhook(
                        tenant.id, hook.id, hook.url, hook.event_types, None, CONFIG_ORIGIN
                    )
                elif known.origin == CONFIG_ORIGIN:
                    self.store.update_config_webhook(tenant.id, hook.id, hook.url, hook.event_types)
                else:
                    log.error("config webhook id clashes with one created over the API tenant=%s id=%s",
                              tenant.id, hook.id)
        for sub in self.store.list_webhooks():
            configured = (sub.tenant_id, sub.subscription_id) in self._config_secrets
            if sub.origin == CONFIG_ORIGIN and not configured:
                self.store.delete_webhook(sub.tenant_id, sub.subscription_id)

    async def start(self) -> None:
        """Every subscription's delivery, or with replicas only the ones whose leases are gained."""
        self.sync_config()
        if self.fence is None:
            for sub in self.store.list_webhooks():
                self._start(sub)

    def lease_keys(self) -> list[str]:
        """Every subscription's lease key, as stored now (creations and deletions over the API, on any
        replica, show at once)."""
        return [lease_key(sub.tenant_id, sub.subscription_id) for sub in self.store.list_webhooks()]

    async def gained(self, key: str) -> None:
        """This replica holds the subscription's lease: deliver it from its stored position."""
        tenant_and_id = subscription_of(key)
        sub = None if tenant_and_id is None else self.store.get_webhook(*tenant_and_id)
        if sub is not None:
            self._start(sub)

    async def losing(self, key: str) -> None:
        """The lease is given up or lost: delivery stops before it is released."""
        tenant_and_id = subscription_of(key)
        task = None if tenant_and_id is None else self._tasks.pop(tenant_and_id, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def stop(self) -> None:
        self._stopped = True
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, sub: WebhookSubscription) -> None:
        if self._stopped:
            return
        key = (sub.tenant_id, sub.subscription_id)
        self._stop_task(key)
        self._tasks[key] = asyncio.create_task(
            self._supervise(sub), name=f"xmpp-connect webhook {sub.tenant_id}/{sub.subscription_id}"
        )

    def _stop_task(self, key: tuple[str, str]) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()

    async def _supervise(self, sub: WebhookSubscription) -> None:
        """Run the subscription's delivery until the subscription is gone (or its lease lost); a failure (a
        store error) is logged and the loop started again from the stored position."""
        key = lease_key(sub.tenant_id, sub.subscription_id)
        fence = self.fence
        while True:
            delivery = SubscriptionDelivery(
                self.store, sub, lambda: self._secret(sub.tenant_id, sub.subscription_id), self.retry,
                self.poll_interval, self.concurrency, (lambda: fence(key)) if fence else lambda: None,
            )
            try:
                await delivery.run()
                return
            except asyncio.CancelledError:
                raise
            except LeaseLost:
                log.warning("webhook delivery stopped, lease lost subscription=%s", sub.subscription_id)
                return
            except Exception as exc:
                log.error("webhook delivery loop failed subscription=%s (%s); restarting",
                          sub.subscription_id, type(exc).__name__)
                await asyncio.sleep(RESTART_AFTER_FAILURE_S)

    def _secret(self, tenant_id: str, subscription_id: str) -> str:
        configured = self._config_secrets.get((tenant_id, subscription_id))
        if configured is not None:
            return configured.reveal()
        key = (tenant_id, subscription_id)
        if key not in self._api_secrets:
            sub = self.store.get_webhook(tenant_id, subscription_id)
            if sub is None or sub.secret is None:
                raise LookupError("the subscription is gone")
            self._api_secrets[key] = sub.secret
        return self._api_secrets[key]

    # -- the API -----------------------------------------------------------------------------------

    def create(self, tenant: TenantConfig, body: dict[str, Any]) -> dict[str, Any]:
        """A new subscription from ``{url, event_types?, id?}``; its secret is in this answer only."""
        unknown = sorted(set(body) - CREATE_FIELDS)
        errors = [FieldError(name, "unknown field") for name in unknown]
        url = body.get("url")
        if not isinstance(url, str) or not url:
            errors.append(FieldError("url", "an https URL is required"))
        else:
            try:
                check_receiver_url(url, self.config.webhooks.allow_http)
            except ReceiverUrlError as exc:
                errors.append(FieldError("url", str(exc)))
        types = body.get("event_types", [])
        if (
            not isinstance(types, list)
            or len(types) > MAX_EVENT_TYPES
            or not all(isinstance(t, str) and t for t in types)
        ):
            errors.append(FieldError("event_types", "a list of event type names is required"))
        subscription_id = body.get("id", "wh_" + secrets.token_hex(8))
        if not isinstance(subscription_id, str) or not ID_PATTERN.match(subscription_id):
            errors.append(FieldError("id", "1-64 letters, digits, '.', '_' or '-'"))
        if errors:
            raise Problem(422, "invalid-request", "The webhook subscription is not valid.", errors)
        assert isinstance(url, str)
        secret = new_secret()
        sub = self.store.add_webhook(tenant.id, subscription_id, url, types, secret, API_ORIGIN)
        if sub is None:
            raise Problem(409, "conflict", "A webhook subscription with this id exists.",
                          [FieldError("id", "already in use")])
        if self.fence is None:
            self._start(sub)
        log.info("webhook subscription created tenant=%s subscription=%s", tenant.id, subscription_id)
        return {**_view(sub), "secret": secret}

    def subscriptions(self, tenant: TenantConfig) -> dict[str, Any]:
        return {"webhooks": [_view(sub) for sub in self.store.list_webhooks(tenant.id)]}

    def delete(self, tenant: TenantConfig, subscription_id: str) -> None:
        self._api_owned(tenant, subscription_id)
        self._stop_task((tenant.id, subscription_id))
        self._api_secrets.pop((tenant.id, subscription_id), None)
        self.store.delete_webhook(tenant.id, subscription_id)
        log.info("webhook subscription deleted tenant=%s subscription=%s", tenant.id, subscription_id)

    def rotate_secret(self, tenant: TenantConfig, subscription_id: str) -> dict[str, Any]:
        """A new secret, used from the next attempt on; shown in this answer only."""
        sub = self._api_owned(tenant, subscription_id)
        secret = new_secret()
        self.store.set_webhook_secret(tenant.id, subscription_id, secret)
        self._api_secrets[(tenant.id, subscription_id)] = secret
        log.info("webhook secret rotated tenant=%s subscription=%s", tenant.id, subscription_id)
        return {**_view(sub), "secret": secret}

    def redeliver(self, tenant: TenantConfig, subscription_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Deliver again every event after ``cursor`` (a feed cursor; absent: from the beginning): the
        delivery loop, on whichever replica, reads the rewound position before its next page."""
        self._found(tenant, subscription_id)
        unknown = sorted(set(body) - {"cursor"})
        cursor = body.get("cursor")
        errors = [FieldError(name, "unknown field") for name in unknown]
        position = 0
        if cursor is not None and not isinstance(cursor, str):
            errors.append(FieldError("cursor", "a feed cursor string is required"))
        elif cursor:
            try:
                position = decode_cursor(cursor)
            except InvalidCursor:
                errors.append(FieldError("cursor", "unknown cursor"))
        if errors:
            raise Problem(422, "invalid-request", "The redelivery request is not valid.", errors)
        self.store.rewind_webhook(tenant.id, subscription_id, position)
        log.info("webhook redelivery tenant=%s subscription=%s", tenant.id, subscription_id)
        return {"id": subscription_id, "cursor": encode_cursor(position)}

    def dead_deliveries(self, tenant: TenantConfig, subscription_id: str) -> dict[str, Any]:
        self._found(tenant, subscription_id)
        return {
            "dead_deliveries": [
                {
                    "event_id": d.event_id,
                    "cursor": encode_cursor(d.seq - 1),
                    "attempts": d.attempts,
                    "reason": d.reason,
                    "last_status": d.last_status,
                    "dead_at": d.dead_at.isoformat(),
                }
                for d in self.store.dead_deliveries(tenant.id, subscription_id)
            ]
        }

    def backlog(self) -> list[tuple[str, str, int]]:
        """(tenant, subscription, feed positions not yet delivered) for every subscription (a metric)."""
        end = self.store.feed_end()
        subs = self.store.list_webhooks()
        return [(s.tenant_id, s.subscription_id, max(0, end - s.position)) for s in subs]

    def _found(self, tenant: TenantConfig, subscription_id: str) -> WebhookSubscription:
        sub = self.store.get_webhook(tenant.id, subscription_id)
        if sub is None:
            raise not_found("webhook subscription")
        return sub

    def _api_owned(self, tenant: TenantConfig, subscription_id: str) -> WebhookSubscription:
        sub = self._found(tenant, subscription_id)
        if sub.origin != API_ORIGIN:
            raise Problem(409, "conflict", "This subscription comes from the config file; change it there.")
        return sub


def _view(sub: WebhookSubscription) -> dict[str, Any]:
    """A subscription as the API shows it (never its secret)."""
    return {
        "id": sub.subscription_id,
        "url": sub.url,
        "event_types": list(sub.event_types),
        "origin": sub.origin,
        "cursor": encode_cursor(sub.position),
        "created_at": sub.created_at.isoformat(),
    }

