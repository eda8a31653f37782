"""Signed checkpoints of a tenant's evidence chain head (Ed25519; spec/audit.md)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from xmpp_connect.model.chain import canonical_json

CHECKPOINT_FORMAT = "xc-checkpoint-1"


class SigningKeyError(ValueError):
    """The configured signing key is not an Ed25519 private key."""


@dataclass(frozen=True)
class Checkpoint:
    """The chain head (``entries`` chained entries ending at ``head_event_id``) signed at ``signed_at``."""

    tenant_id: str
    checkpoint_id: str
    head_event_id: str | None
    head_hash: str
    entries: int
    signed_at: str
    key_id: str
    signature: str

    def signed_bytes(self) -> bytes:
        """What the signature covers: the canonical JSON array of the format and the fields before it."""
        return canonical_json(
            [
                CHECKPOINT_FORMAT,
                self.tenant_id,
                self.checkpoint_id,
                self.head_event_id,
                self.head_hash,
                self.entries,
                self.signed_at,
                self.key_id,
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_private_key(text: str) -> Ed25519PrivateKey:
    """A PEM (PKCS#8) Ed25519 private key, or its 32 raw bytes in base64."""
    stripped = text.strip()
    try:
        if stripped.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(stripped.encode(), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(stripped, validate=True))
    except ValueError as exc:
        raise SigningKeyError("the audit signing key is not a PEM or base64 Ed25519 private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError("the audit signing key is not an Ed25519 key")
    return key


def generate_private_key_pem() -> str:
    """A new Ed25519 private key as PKCS#8 PEM (``xmpp-connect audit keygen``)."""
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public key's 32 raw bytes in base64."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def public_key_pem(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def key_id(public_key: str) -> str:
    """The first 16 hex digits of sha256 over the raw public key."""
    return hashlib.sha256(base64.b64decode(public_key)).hexdigest()[:16]


def load_public_key(text: str) -> Ed25519PublicKey:
    """A PEM public key or its 32 raw bytes in base64."""
    stripped = text.strip()
    try:
        if stripped.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(stripped.encode())
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(stripped, validate=True))
    except ValueError as exc:
        raise SigningKeyError("not a PEM or base64 Ed25519 public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError("not an Ed25519 public key")
    return key


def sign_checkpoint(
    key: Ed25519PrivateKey,
    *,
    tenant_id: str,
    checkpoint_id: str,
    head_event_id: str | None,
    head_hash: str,
    entries: int,
    signed_at: str,
) -> Checkpoint:
    unsigned = Checkpoint(
        tenant_id,
        checkpoint_id,
        head_event_id,
        head_hash,
        entries,
        signed_at,
        key_id(public_key_text(key)),
        "",
    )
    signature = base64.b64encode(key.sign(unsigned.signed_bytes())).decode()
    return Checkpoint(**{**unsigned.to_dict(), "signature": signature})


def signature_valid(checkpoint: Checkpoint, public_key: Ed25519PublicKey) -> bool:
    if checkpoint.key_id != key_id(public_key_text(public_key)):
        return False
    try:
        public_key.verify(base64.b64decode(checkpoint.signature), checkpoint.signed_bytes())
    except (InvalidSignature, ValueError):
        return False
    return True
