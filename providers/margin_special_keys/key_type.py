"""The three kinds of special key, and every way Binance spells them on the wire."""

from __future__ import annotations

from enum import StrEnum


class KeyType(StrEnum):
    """Our names are the config values (ED25519, RSA, HMAC); `wire` is Binance's spelling."""

    ED25519 = "ED25519"
    RSA = "RSA"
    HMAC = "HMAC"

    @property
    def wire(self) -> str:
        """How the docs spell it in a response's `type` (Create Special Key, Query Special Key)."""
        return {"ED25519": "Ed25519", "RSA": "RSA", "HMAC": "HMAC_SHA256"}[self.value]

    @classmethod
    def from_config(cls, text: object) -> KeyType | None:
        """A config value (ED25519, RSA or HMAC, any case, spaces around); None for anything else."""
        token = text.strip().upper() if isinstance(text, str) else None
        return cls(token) if token is not None and token in cls.__members__ else None

    @classmethod
    def from_wire(cls, text: object) -> KeyType | None:
        """Any documented spelling, in any case: Ed25519, ED25519, RSA, HMAC_SHA256, HMAC.

        None when the exchange gave no type or one we do not know; callers treat that as
        "not stated", never as a mismatch.
        """
        if not isinstance(text, str):
            return None
        token = text.strip().upper().replace("-", "_")
        if token in ("HMAC_SHA256", "HMACSHA256", "HMAC"):
            return cls.HMAC
        if token in ("ED25519", "RSA"):
            return cls(token)
        return None
