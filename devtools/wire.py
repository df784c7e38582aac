"""Signed requests to the sandbox built by hand, with every part of the wire under the caller's
control (query, form body, timestamp, tampering). Its signing is written here from Binance's
docs, independently of the client under test, so the two check each other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

import requests


def sign(account: Mapping[str, str], payload: bytes) -> str:
    """HMAC-SHA256 hex, or base64 Ed25519 / RSA PKCS#1 v1.5 SHA-256, percent-encoded."""
    if "secretKey" in account:
        return hmac.new(account["secretKey"].encode(), payload, hashlib.sha256).hexdigest()
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

    key = serialization.load_pem_private_key(account["privateKey"].encode(), password=None)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.sign(payload)
    else:
        assert isinstance(key, rsa.RSAPrivateKey)
        raw = key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    return quote(base64.b64encode(raw).decode(), safe="")


class Wire:
    def __init__(self, base_url: str, account: Mapping[str, str]) -> None:
        self.base_url = base_url
        self.account = account
        self._session = requests.Session()

    def send(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        body_params: dict[str, Any] | None = None,
        timestamp: int | None = None,
        recv_window: int | None = None,
        api_key: str | None = "",
        tamper: Callable[[bytes, bytes], tuple[bytes, bytes]] | None = None,
        signed: bool = True,
    ) -> requests.Response:
        """`params` go in the query string, `body_params` in a form body (the signature and
        timestamp join the body when there is one, as the docs' mixed example shows)."""
        query_params = dict(params or {})
        body = dict(body_params or {})
        signed_part = body if (method != "GET" and body_params is not None) else query_params
        if recv_window is not None:
            signed_part["recvWindow"] = recv_window
        signed_part["timestamp"] = timestamp if timestamp is not None else int(time.time() * 1000)
        query = urlencode(query_params).encode()
        raw_body = urlencode(body).encode()
        if signed:
            signature = sign(self.account, query + raw_body).encode()
            if method != "GET" and body_params is not None:
                raw_body += b"&signature=" + signature
            else:
                query += b"&signature=" + signature
        if tamper is not None:
            query, raw_body = tamper(query, raw_body)
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if raw_body else {}
        key = self.account["apiKey"] if api_key == "" else api_key
        if key is not None:
            headers["X-MBX-APIKEY"] = key
        url = f"{self.base_url}{path}" + (f"?{query.decode('latin-1')}" if query else "")
        return self._session.request(method, url, data=raw_body or None, headers=headers, timeout=10)


def error_code(response: requests.Response) -> int | None:
    body = response.json()
    return body.get("code") if isinstance(body, dict) else None
