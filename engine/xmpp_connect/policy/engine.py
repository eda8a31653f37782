"""The rule engine host: the only module that imports durable_rules.

A thread-free Host evaluates one fact at a time under one fixed sid, as an event (first match by `pri` wins),
and reports the id of the rule that fired. Reload builds a new ruleset under a fresh name, swaps it in, then
frees the old one's C handle, so repeated reloads neither leak nor disturb a classification in flight.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import durable_rules_engine
from durable.engine import Host, MessageNotHandledException

from xmpp_connect.policy.compile import compile_ruleset
from xmpp_connect.policy.model import Policy, Rule

SID = "xmpp-connect"
_names = itertools.count()


class _QuietHost(Host):
    """A durable Host that starts no dispatcher or timer threads and records the rule an event fired."""

    def __init__(self) -> None:
        self.fired: str | None = None
        super().__init__()

    def _run(self) -> None:
        """No background dispatch: the host only works when we post to it."""

    def get_action(self, action_name: str) -> Any:
        def record(_closure: Any) -> None:
            self.fired = action_name

        return record


@dataclass(frozen=True)
class _Loaded:
    policy: Policy
    rules_by_id: Mapping[str, Rule]
    host: _QuietHost
    ruleset: str


@dataclass(frozen=True)
class Match:
    """The policy that decided, and the first rule of it that matched (None: no rule matched)."""

    policy: Policy
    rule: Rule | None


class RuleEngine:
    """First-match classification of facts by a policy's rules, compiled into durable_rules."""

    def __init__(self, policy: Policy) -> None:
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = _load(policy)

    @property
    def policy(self) -> Policy:
        return self._current().policy

    def first_match(self, fact: Mapping[str, Any]) -> Match:
        """The first rule (by priority) the fact satisfies; the fact must fit the vocabulary."""
        event = dict(fact)
        event["sid"] = SID
        with self._lock:
            loaded = self._current()
            loaded.host.fired = None
            try:
                loaded.host.post(loaded.ruleset, event)
            except MessageNotHandledException:
                return Match(loaded.policy, None)
            fired = loaded.host.fired
        return Match(loaded.policy, loaded.rules_by_id[fired] if fired is not None else None)

    def reload(self, policy: Policy) -> None:
        """Switch to `policy` atomically: a fact is classified wholly by the old or wholly by the new."""
        fresh = _load(policy)
        with self._lock:
            old, self._loaded = self._loaded, fresh
            if old is not None:
                _free(old)

    def close(self) -> None:
        """Free the ruleset's native memory; the engine cannot classify afterwards."""
        with self._lock:
            if self._loaded is not None:
                _free(self._loaded)
                self._loaded = None

    def _current(self) -> _Loaded:
        if self._loaded is None:
            raise RuntimeError("the rule engine is closed")
        return self._loaded


def _load(policy: Policy) -> _Loaded:
    name = f"xmpp_connect_policy_{policy.version}_{next(_names)}"
    host = _QuietHost()
    host.register_rulesets({name: copy.deepcopy(compile_ruleset(policy.rules))})
    return _Loaded(policy, {rule.id: rule for rule in policy.rules}, host, name)


def _free(loaded: _Loaded) -> None:
    durable_rules_engine.delete_ruleset(loaded.host.get_ruleset(loaded.ruleset)._handle)
