"""Fixtures for tests against a real Prosody: one server per session, fresh accounts per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from adapter import AdapterUnderTest
from prosody import ProsodyServer, TestUser
from recipients import Behaviour, Recipient

from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.policy.commands import CommandTable


@pytest.fixture(scope="session")
def commands(classifier: Classifier) -> CommandTable:
    return CommandTable.from_mapping(classifier.policy.commands)


@pytest.fixture
def sender_user(live_prosody: ProsodyServer) -> TestUser:
    return live_prosody.fresh_user("sender")


@pytest.fixture
def recipient_user(live_prosody: ProsodyServer) -> TestUser:
    return live_prosody.fresh_user("rcpt")


@pytest.fixture
async def adapter(live_prosody: ProsodyServer, sender_user: TestUser, classifier: Classifier,
                  commands: CommandTable) -> AsyncIterator[AdapterUnderTest]:
    """The adapter logged in as a fresh account, stopped after the test."""
    under_test = AdapterUnderTest(live_prosody, sender_user, classifier, commands)
    assert await under_test.start(), "adapter did not get a session"
    yield under_test
    await under_test.stop()


@pytest.fixture
async def recipient(live_prosody: ProsodyServer) -> AsyncIterator[Callable[..., Recipient]]:
    """A factory of recipient clients (offline until ``await r.online()``), all logged out after the test."""
    made: list[Recipient] = []

    def make(user: TestUser, resource: str = "phone", behaviour: Behaviour | None = None) -> Recipient:
        client = Recipient(live_prosody, user, resource, behaviour or Behaviour())
        made.append(client)
        return client

    yield make
    for client in made:
        await client.offline()
