"""Several XMPP accounts (§34 channel separation), one long-lived provider each, all in one asyncio loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from xmpp_connect.config.settings import AccountConfig
from xmpp_connect.providers.base import ChannelHealth, EventSink, XmppProvider
from xmpp_connect.providers.slixmpp_client import SlixmppProvider

ProviderFactory = Callable[[AccountConfig, EventSink], XmppProvider]


class AccountProviders:
    """The configured accounts' providers, keyed by account ref; every one reports to the same sink."""

    def __init__(self, settings: Iterable[AccountConfig], sink: EventSink,
                 factory: ProviderFactory = SlixmppProvider) -> None:
        self._providers: dict[str, XmppProvider] = {}
        for account in settings:
            if account.ref in self._providers:
                raise ValueError(f"account {account.ref!r} is configured twice")
            self._providers[account.ref] = factory(account, sink)

    def __getitem__(self, account: str) -> XmppProvider:
        return self._providers[account]

    def __contains__(self, account: object) -> bool:
        return account in self._providers

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(self._providers)

    async def start(self) -> dict[str, bool]:
        """Start every account concurrently; which got a session (the others keep retrying or failed)."""
        outcomes = await asyncio.gather(*(provider.start() for provider in self._providers.values()))
        return dict(zip(self._providers, outcomes, strict=True))

    async def stop(self) -> None:
        await asyncio.gather(*(provider.stop() for provider in self._providers.values()))

    def health(self) -> dict[str, ChannelHealth]:
        return {account: provider.health() for account, provider in self._providers.items()}
