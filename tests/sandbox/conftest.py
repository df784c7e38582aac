"""Sandbox fixtures: raw signed requests, built by hand so each wire rule can be bent."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from providers.binance.signing import HmacSigner, PrivateKeySigner, Signer
from tests.harness import SandboxAccount, SandboxProcess


def signer_for(account: dict[str, str]) -> Signer:
    if "secretKey" in account:
        return HmacSigner(account["secretKey"])
    return PrivateKeySigner(account["privateKey"])


class Wire:
    """Signed requests to the sandbox, with every part of the wire format under the test's control."""

    def __init__(self, base_url: str, account: dict[str, str]) -> None:
        self.base_url = base_url
        self.account = account
        self.signer = signer_for(account)

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
        sign: bool = True,
    ) -> requests.Response:
        query_params = dict(params or {})
        body = dict(body_params or {})
        signed_part = body if (method != "GET" and body_params is not None) else query_params
        if recv_window is not None:
            signed_part["recvWindow"] = recv_window
        signed_part["timestamp"] = timestamp if timestamp is not None else int(time.time() * 1000)
        query = urlencode(query_params).encode()
        raw_body = urlencode(body).encode()
        if sign:
            signature = self.signer.sign(query + raw_body).encode()
            if method != "GET" and body_params is not None:
                raw_body += b"&signature=" + signature
            else:
                query += b"&signature=" + signature
        if tamper is not None:
            query, raw_body = tamper(query, raw_body)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        key = self.account["apiKey"] if api_key == "" else api_key
        if key is not None:
            headers["X-MBX-APIKEY"] = key
        url = f"{self.base_url}{path}" + (f"?{query.decode('latin-1')}" if query else "")
        return requests.request(method, url, data=raw_body or None, headers=headers, timeout=10)


def error_code(response: requests.Response) -> int | None:
    body = response.json()
    return body.get("code") if isinstance(body, dict) else None


@pytest.fixture
def make_wire(sandbox: SandboxProcess) -> Callable[..., Wire]:
    def make(key_type: str = "HMAC", **kwargs: Any) -> Wire:
        account: SandboxAccount = sandbox.create_account(key_type=key_type, **kwargs)
        return Wire(sandbox.base_url, account)

    return make


@pytest.fixture
def wire(make_wire: Callable[..., Wire]) -> Wire:
    return make_wire("HMAC")
