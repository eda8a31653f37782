"""The policy: YAML tables that decide what a fact is (rules/) and what that means (mappings/)."""

from xmpp_connect.policy.load import load_policy
from xmpp_connect.policy.model import Policy, Rule, Scenario, StanzaErrorEntry
from xmpp_connect.policy.problems import PolicyError, Problem

__all__ = [
    "Policy",
    "PolicyError",
    "Problem",
    "Rule",
    "Scenario",
    "StanzaErrorEntry",
    "load_policy",
]
