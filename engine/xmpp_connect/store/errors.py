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


class LeaseLost(StoreError):
    """This replica no longer holds the account's lease (or its token was superseded): an owner-only write
    is refused, and the transaction it was part of rolls back (spec/replicas.md)."""

    def __init__(self, account_ref: str) -> None:
        super().__init__("the account's lease is not held by this replica")
        self.account_ref = account_ref
