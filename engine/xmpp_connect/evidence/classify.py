"""Fact -> Classification: the first matching rule names a scenario; the scenario gives the outputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xmpp_connect.model.classification import Classification
from xmpp_connect.policy.engine import RuleEngine
from xmpp_connect.policy.model import UNMAPPED, Policy, Rule
from xmpp_connect.policy.vocabulary import FactError

__all__ = ["Classifier", "FactError", "classification_for"]


class Classifier:
    """Classifies facts under one policy at a time; safe to share between threads; reloadable."""

    def __init__(self, policy: Policy) -> None:
        self._engine = RuleEngine(policy)

    @property
    def policy(self) -> Policy:
        return self._engine.policy

    def classify(self, fact: Mapping[str, Any]) -> Classification:
        """Raises FactError for a fact outside facts.schema.json; an unmatched fact is `unmapped`."""
        policy = self._engine.policy
        policy.vocabulary.check_fact(fact)
        match = self._engine.first_match(fact)
        return classification_for(match.policy, match.rule, fact)

    def reload(self, policy: Policy) -> None:
        self._engine.reload(policy)

    def close(self) -> None:
        self._engine.close()

    def __enter__(self) -> Classifier:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def classification_for(policy: Policy, rule: Rule | None, fact: Mapping[str, Any]) -> Classification:
    """The outputs of the rule's scenario (or the built-in `unmapped` when no rule matched)."""
    scenario = policy.scenario(rule.scenario if rule is not None else UNMAPPED)
    return Classification(
        scenario=scenario.id,
        rule_id=rule.id if rule is not None else None,
        policy_version=policy.version,
        assessment=scenario.assessment,
        events=scenario.events,
        attempt_state=scenario.attempt_state,
        grade=policy.grades[scenario.grade] if scenario.grade is not None else None,
        notes=scenario.notes,
        retryable=scenario.retryable,
        dead_letter=scenario.dead_letter,
        scope=scenario.scope,
        fact=dict(fact),
    )
