"""Errors the store raises; the API maps them to HTTP problems."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of store errors."""


class IdempotencyConflict(StoreError):
    """The idempotency key was used before with a different payload (HTTP 409)."""

    def __init__(self, idempotency_key: str) -> None:
        super().__init__("idempotency key reused with a different payload")
        self.idempotency_key = idempotency_key


class InvalidCursor(StoreError):
    """A feed cursor that this store did not issue (HTTP 400)."""


class NotFound(StoreError):
    """The record does not exist for this tenant (HTTP 404)."""


class StoreUnavailable(StoreError):
    """The database cannot be reached."""


class TransactionMisuse(StoreError):
    """A store transaction was used from another asyncio task than the one that opened it."""
