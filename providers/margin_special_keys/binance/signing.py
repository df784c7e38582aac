"""Signatures over the exact payload sent: HMAC-SHA256, RSA (PKCS#1 v1.5, SHA-256) and Ed25519.

The payload is the url-encoded parameter string as it goes on the wire. HMAC signatures are hex;
RSA and Ed25519 signatures are base64 and percent-encoded, since they are appended as a
parameter value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any, Protocol
from urllib.parse import quote


class Signer(Protocol):
    name: str

    def sign(self, payload: bytes) -> str:
        """The value of the `signature` parameter, ready to append to the payload."""
        ...


class HmacSigner:
    name = "HMAC_SHA256"

    def __init__(self, secret_key: str) -> None:
        self._secret = secret_key.encode()

    def sign(self, payload: bytes) -> str:
        return hmac.new(self._secret, payload, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "HmacSigner(<secret>)"


def load_private_key(pem: str) -> Any:
    """An Ed25519 or RSA private key object from an unencrypted PKCS#8 PEM. ValueError never
    quotes the input (the parser's own message can)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if not isinstance(pem, str) or "PRIVATE KEY-----" not in pem:
        raise ValueError("must be an unencrypted PKCS#8 PEM (a BEGIN PRIVATE KEY block)")
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("is not a readable, unencrypted PEM private key") from None
    if not isinstance(key, (ed25519.Ed25519PrivateKey, rsa.RSAPrivateKey)):
        raise ValueError("must be an Ed25519 or RSA private key")
    return key


class PrivateKeySigner:
    """RSA or Ed25519, decided by the type of the loaded key object."""

    def __init__(self, private_key_pem: str) -> None:
        from cryptography.hazmat.primitives.asymmetric import ed25519

        try:
            key = load_private_key(private_key_pem)
        except ValueError as exc:
            raise ValueError(f"binance:privateKey {exc}") from None
        self.name = "Ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else "RSA"
        self._key = key

    def sign(self, payload: bytes) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            raw = self._key.sign(payload)
        else:
            assert isinstance(self._key, rsa.RSAPrivateKey)
            raw = self._key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        return quote(base64.b64encode(raw).decode(), safe="")

    def __repr__(self) -> str:
        return f"PrivateKeySigner({self.name}, <secret>)"
