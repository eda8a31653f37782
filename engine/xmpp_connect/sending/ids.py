"""The message and attempt ids of a send, derived from its operation id (so a replay finds them again)."""

from __future__ import annotations


def message_id(operation_id: str) -> str:
    return "xmppmsg_" + operation_id.removeprefix("xmppop_")


def attempt_id(operation_id: str) -> str:
    return "xmppatt_" + operation_id.removeprefix("xmppop_")
