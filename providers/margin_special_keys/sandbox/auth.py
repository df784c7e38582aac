"""The sandbox's own check of signed requests: signature, timestamp and recvWindow.

Written from Binance's rules, independently of the client's signer in `providers/binance`: the
payload is the query string concatenated, with no separator, to the body, exactly as received,
less the `signature` parameter. HMAC signatures are hex (any case); RSA (PKCS#1 v1.5, SHA-256)
and Ed25519 signatures are base64, percent-encoded on the wire.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from urllib.parse import unquote_to_bytes

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from . import errors
from .store import ApiKey

MAX_RECV_WINDOW_MS = 60000
DEFAULT_RECV_WINDOW_MS = 5000
MAX_AHEAD_MS = 1000


def split_signature(query: bytes, body: bytes) -> tuple[bytes, bytes | None]:
    """The signed payload and the raw signature value, as found in the query string or the body."""
    signature: bytes | None = None
    parts: list[bytes] = []
    for raw in (query, body):
        kept = []
        for segment in raw.split(b"&") if raw else []:
            if segment.startswith(b"signature="):
                signature = segment[len(b"signature=") :]
            else:
                kept.append(segment)
        parts.append(b"&".join(kept))
    return parts[0] + parts[1], signature


def verify_signature(key: ApiKey, query: bytes, body: bytes) -> None:
    if any(b > 0x7F for b in query + body):
        # Since 2026-01-15 Binance requires the payload to be percent-encoded before signing.
        raise errors.bad_signature()
    payload, raw_signature = split_signature(query, body)
    if not raw_signature:
        raise errors.mandatory_missing("signature")
    signature = unquote_to_bytes(raw_signature)
    if key.key_type == "HMAC_SHA256":
        assert key.secret_key is not None
        expected = hmac.new(key.secret_key.encode(), payload, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.decode("ascii", "replace").lower()):
            raise errors.bad_signature()
        return
    try:
        decoded = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise errors.bad_signature() from None
    assert key.public_key is not None
    public_key = serialization.load_pem_public_key(key.public_key.encode())
    try:
        if key.key_type == "RSA":
            assert isinstance(public_key, rsa.RSAPublicKey)
            public_key.verify(decoded, payload, padding.PKCS1v15(), hashes.SHA256())
        elif key.key_type == "Ed25519":
            assert isinstance(public_key, ed25519.Ed25519PublicKey)
            public_key.verify(decoded, payload)
        else:
            raise errors.bad_signature()
    except InvalidSignature:
        raise errors.bad_signature() from None


def check_timestamp(timestamp: str | None, recv_window: str | None, server_ms: int) -> None:
    """Binance's rule: timestamp < serverTime + 1000 and serverTime - timestamp <= recvWindow."""
    if timestamp is None or timestamp == "":
        raise errors.mandatory_missing("timestamp")
    if not timestamp.isdigit():
        raise errors.illegal_characters("timestamp")
    window = DEFAULT_RECV_WINDOW_MS
    if recv_window is not None:
        try:
            window_value = float(recv_window)
        except ValueError:
            raise errors.illegal_characters("recvWindow") from None
        if window_value > MAX_RECV_WINDOW_MS or window_value <= 0:
            raise errors.bad_recv_window()
        window = int(window_value)
    stamp = int(timestamp)
    # Microsecond timestamps have 16 digits; milliseconds 13.
    stamp_ms = stamp / 1000 if stamp >= 10**15 else float(stamp)
    if stamp_ms >= server_ms + MAX_AHEAD_MS:
        raise errors.timestamp_ahead()
    if server_ms - stamp_ms > window:
        raise errors.timestamp_outside_window()
