"""JID helpers (RFC 7622, pragmatic): split, compare by bare JID, and check syntax before sending.

Parsing follows RFC 7622 §3.2: the resource starts at the first ``/``; the localpart ends at the first ``@``
before it. ``bare`` and ``normalize`` lower-case localpart and domain (both compare case-insensitively) and
drop a trailing dot from the domain; the resource is kept as is. None of them validate: ``is_valid_jid`` does.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from functools import lru_cache

MAX_PART_BYTES = 1023
MAX_LABEL_CHARS = 63
VALIDITY_CACHE_SIZE = 1024
LOCALPART_FORBIDDEN = frozenset("\"&'/:<>@ ")


def split_jid(jid: str) -> tuple[str | None, str, str | None]:
    """``local@domain/resource`` -> (local or None, domain, resource or None); no validation."""
    rest, slash, resource = jid.partition("/")
    local, at, domain = rest.partition("@")
    if not at:
        local, domain = "", rest
    return (local if at else None), domain, (resource if slash else None)


def _norm_domain(domain: str) -> str:
    return domain[:-1].lower() if domain.endswith(".") else domain.lower()


def bare(jid: str) -> str:
    """The bare JID (``local@domain``), lower-cased, for comparing accounts."""
    local, domain, _ = split_jid(jid)
    domain = _norm_domain(domain)
    return f"{local.lower()}@{domain}" if local is not None else domain


def resource(jid: str) -> str | None:
    """The resource part, or None for a bare JID."""
    return split_jid(jid)[2]


def normalize(jid: str) -> str:
    """The JID with lower-cased bare part and the resource unchanged, for comparing full JIDs."""
    res = resource(jid)
    return bare(jid) if res is None else f"{bare(jid)}/{res}"


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text)


def _fits(part: str) -> bool:
    return 0 < len(part.encode("utf-8", "surrogatepass")) <= MAX_PART_BYTES


def _valid_localpart(local: str) -> bool:
    return (
        _fits(local)
        and not any(ch in LOCALPART_FORBIDDEN or ch.isspace() for ch in local)
        and not _has_control(local)
    )


def _valid_label(label: str) -> bool:
    return (
        0 < len(label) <= MAX_LABEL_CHARS
        and not label.startswith("-")
        and not label.endswith("-")
        and all(ch.isalnum() or ch == "-" for ch in label)
    )


def _valid_domain(domain: str) -> bool:
    if domain.endswith("."):
        domain = domain[:-1]
    if not _fits(domain):
        return False
    if domain.startswith("[") and domain.endswith("]"):
        try:
            ipaddress.IPv6Address(domain[1:-1])
        except ValueError:
            return False
        return True
    try:
        ipaddress.IPv4Address(domain)
    except ValueError:
        labels = domain.split(".")
        return all(_valid_label(label) for label in labels) and not labels[-1].isdigit()
    return True


def _valid_resource(res: str) -> bool:
    return _fits(res) and not _has_control(res)


@lru_cache(maxsize=VALIDITY_CACHE_SIZE)
def is_valid_jid(jid: str) -> bool:
    """RFC 7622 syntax, pragmatically: parts of 1..1023 bytes, no ``"&'/:<>@`` or space in the localpart,
    domain labels of letters/digits/hyphens and a non-numeric last label (or an IPv4/[IPv6] literal), no
    control characters. Memoized: the same few senders and recipients are checked on every stanza."""
    if not jid:
        return False
    local, domain, res = split_jid(jid)
    if local is not None and not _valid_localpart(local):
        return False
    if res is not None and not _valid_resource(res):
        return False
    return _valid_domain(domain)
