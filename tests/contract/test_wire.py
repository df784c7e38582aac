"""What goes on the wire, compared with Binance's official connector (binance-common), and seen by
a real HTTP server that records each request exactly as it arrived."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlencode

import pytest
from binance_common import utils as official
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from margin_special_keys.binance.client import BinanceClient
from margin_special_keys.binance.errors import RateLimited
from margin_special_keys.binance.signing import HmacSigner, PrivateKeySigner
from margin_special_keys.errors import OutcomeUnknown

SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
# binance-common annotates encoded_string as taking a str; it takes the parameter dict.
encoded_string = cast(Callable[[dict[str, Any]], str], official.encoded_string)
hmac_hashing: Callable[[str, str], str] = official.hmac_hashing
PUBLIC_PEM = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class Recorder(BaseHTTPRequestHandler):
    """Answers like the exchange's success shapes and keeps each raw request."""

    seen: list[dict[str, Any]] = []
    raw_answer: bytes | None = None  # answer this, with 200, instead of the success shape
    retry_after: str | None = None  # answer 429 with this Retry-After instead
    trickle: float | None = None  # send the body a byte at a time, this many seconds apart

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        path, _, query = self.path.partition("?")
        self.seen.append({"method": self.command, "path": path, "query": query,
                          "body": self.rfile.read(length) if length else b"",
                          "content_type": self.headers.get("Content-Type")})
        answer: Any = {}
        if path == "/sapi/v1/margin/api-key-list":
            answer = []
        elif (self.command, path) == ("POST", "/sapi/v1/margin/apiKey"):
            answer = {"apiKey": "A" * 64, "secretKey": None, "type": "Ed25519"}
        data = self.raw_answer if self.raw_answer is not None else json.dumps(answer).encode()
        if self.retry_after is not None:
            data = b'{"code": -1003, "msg": "Too many requests."}'
        self.send_response(429 if self.retry_after is not None else 200)
        if self.retry_after is not None:
            self.send_header("Retry-After", self.retry_after)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.trickle is None:
            self.wfile.write(data)
            return
        for i in range(len(data)):
            try:
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
            except OSError:
                return
            time.sleep(self.trickle)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


@pytest.fixture(params=[None])
def recorder(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    options = request.param if isinstance(request.param, dict) else {"raw_answer": request.param}
    handler = type("Handler", (Recorder,), {"seen": seen, **options})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_every_method_sends_every_parameter_in_the_query_string_and_no_body(
    recorder: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = recorder
    client = BinanceClient(url, "K" * 64, HmacSigner(SECRET))
    client.create_special_key("desk é 東京", "BTCUSDT", ["10.0.0.1", "10.0.0.2"], PUBLIC_PEM, "TRADE")
    client.query_special_key("A" * 64, "BTCUSDT")
    client.list_special_keys(None)
    client.edit_ip("A" * 64, "BTCUSDT", ["10.0.0.3"])
    client.delete_special_key("A" * 64, "BTCUSDT")
    client.exit_special_key_mode()
    assert [r["method"] for r in seen] == ["POST", "GET", "GET", "PUT", "DELETE", "POST"]
    for request in seen:
        assert request["body"] == b"" and request["content_type"] is None, request["method"]
        payload, _, signature = request["query"].rpartition("&signature=")
        # The signature is over exactly the query string before it, as sent.
        assert signature == hmac_hashing(SECRET, payload)
        names = [name for name, _ in parse_qsl(request["query"])]
        assert names[-3:] == ["recvWindow", "timestamp", "signature"]
    delete = seen[4]
    assert dict(parse_qsl(delete["query"])) | {"timestamp": "", "signature": ""} == {
        "apiKey": "A" * 64, "symbol": "BTCUSDT", "recvWindow": "5000", "timestamp": "",
        "signature": ""}
    created = dict(parse_qsl(seen[0]["query"]))
    assert created["apiName"] == "desk é 東京" and created["publicKey"] == PUBLIC_PEM


def official_query(params: dict[str, Any], signature: str) -> str:
    """The query string binance-common's send_request puts on the wire for these parameters."""
    return encoded_string({**params, "signature": signature})


def our_query(client: BinanceClient, params: dict[str, Any], timestamp: int) -> str:
    client._now_ms = lambda: timestamp  # type: ignore[method-assign]
    return client.signed_query(params)


def test_hmac_requests_match_the_official_connector_byte_for_byte() -> None:
    params = {"apiName": "desk é 東京", "symbol": "BTCUSDT", "ip": "10.0.0.1,10.0.0.2",
              "publicKey": PUBLIC_PEM, "permissionMode": "TRADE"}
    theirs = {**params, "recvWindow": 5000, "timestamp": 1_767_225_600_000}
    payload = encoded_string(theirs)
    expected = official_query(theirs, hmac_hashing(SECRET, payload))
    ours = our_query(BinanceClient("https://api.binance.com", "K", HmacSigner(SECRET)), params,
                     1_767_225_600_000)
    assert ours == expected


def test_ed25519_requests_match_the_official_connector_byte_for_byte() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    params = {"apiKey": "A" * 64, "symbol": "ETHUSDT"}
    theirs = {**params, "recvWindow": 5000, "timestamp": 1_767_225_600_000}
    payload = encoded_string(theirs)
    # Ed25519 signatures are deterministic: the connector's base64 of the same signature.
    signature = base64.b64encode(private.sign(payload.encode())).decode()
    ours = our_query(BinanceClient("https://api.binance.com", "K", PrivateKeySigner(pem)), params,
                     1_767_225_600_000)
    assert ours == official_query(theirs, signature)
    assert unquote(ours.rpartition("&signature=")[2]) == signature
    assert urlencode(theirs) == ours.rpartition("&signature=")[0]


@pytest.mark.parametrize("recorder", [b"<html>gateway</html>", b"{}"], indirect=True)
def test_a_create_answered_200_without_a_key_is_an_unknown_outcome(
    recorder: tuple[str, list[dict[str, Any]]],
) -> None:
    """Not JSON, or no apiKey: the key may exist all the same, so it is reconciled like a 5xx."""
    url, seen = recorder
    client = BinanceClient(url, "K" * 64, HmacSigner(SECRET))
    with pytest.raises(OutcomeUnknown, match="the outcome is unknown"):
        client.create_special_key("desk", None, ["10.0.0.1"], PUBLIC_PEM, None)
    assert [r["method"] for r in seen] == ["POST"]  # a create is never blindly retried


@pytest.mark.parametrize("recorder", [{"retry_after": v} for v in ("0.000001", "-5", "nan", "abc")],
                         indirect=True)
def test_retry_after_is_at_least_a_second_and_attempts_are_capped(
    recorder: tuple[str, list[dict[str, Any]]],
) -> None:
    """A server that says `Retry-After: 0.000001` once made 69 requests in 3 s; `-5` or `nan`
    crashed the run. Now: at least 1 s between tries, 5 tries at most, and no crash."""
    url, seen = recorder
    waits: list[float] = []
    client = BinanceClient(url, "K" * 64, HmacSigner(SECRET), sleep=waits.append)
    with pytest.raises(RateLimited):
        client.list_special_keys(None)
    assert len(seen) == 5 and waits == [1.0] * 4


@pytest.mark.parametrize("recorder", [{"trickle": 0.2}], indirect=True)
def test_a_server_that_trickles_its_answer_cannot_hold_a_call_past_its_deadline(
    recorder: tuple[str, list[dict[str, Any]]],
) -> None:
    """Each byte arrives well within the 1 s socket timeout, the whole answer never does."""
    url, seen = recorder
    client = BinanceClient(url, "K" * 64, HmacSigner(SECRET), timeout_seconds=1,
                           sleep=lambda _: None)
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown, match="did not arrive within 1s"):
        client.create_special_key("desk", None, ["10.0.0.1"], PUBLIC_PEM, None)
    assert time.monotonic() - started < 3 and len(seen) == 1  # about the deadline, not 12 s
