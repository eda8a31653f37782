"""Fixtures for the policy unit tests: a small complete policy and corpus under fixtures/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.policy import Policy, load_policy

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_POLICY = FIXTURES / "policy"
FIXTURE_CORPUS = FIXTURES / "corpus"


@pytest.fixture(scope="session")
def fixture_policy() -> Policy:
    return load_policy(FIXTURE_POLICY)


@pytest.fixture
def classifier(fixture_policy: Policy) -> Iterator[Classifier]:
    with Classifier(fixture_policy) as classifier:
        yield classifier


@pytest.fixture
def policy_copy(tmp_path: Path) -> Path:
    """A writable copy of the fixture tables, to break."""
    target = tmp_path / "policy"
    shutil.copytree(FIXTURE_POLICY, target)
    return target
