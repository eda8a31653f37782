"""The check a webhook receiver URL passes before it is accepted (config file or API)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost"})


class ReceiverUrlError(ValueError):
    """Why the URL is refused (never repeats credentials from it)."""


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_receiver_url(url: str, allow_http: bool) -> str:
    """``url`` if it is an absolute https URL (or http to loopback, or any http when ``allow_http``) with a
    host, no credentials and no fragment; else raises ReceiverUrlError."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises for a port that is not a number in range
    except ValueError:
        raise ReceiverUrlError("not a valid URL") from None
    if parts.scheme not in ("https", "http"):
        raise ReceiverUrlError("the scheme must be https")
    host = parts.hostname or ""
    if not host:
        raise ReceiverUrlError("a host is required")
    if parts.username is not None or parts.password is not None:
        raise ReceiverUrlError("credentials in the URL are not allowed; the signature authenticates")
    if parts.fragment:
        raise ReceiverUrlError("a fragment is not allowed")
    if parts.scheme == "http" and not allow_http and not is_loopback(host):
        raise ReceiverUrlError("the scheme must be https (http only to loopback or with webhooks.allow_http)")
    return url
