"""The sandbox's signature, key and timestamp rules, each with Binance's code."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

import pytest

from margin_special_keys.binance.signing import HmacSigner
from margin_special_keys.sandbox import auth, errors
from margin_special_keys.sandbox.store import ApiKey
from tests.sandbox.conftest import Wire, error_code

CREATE = "/sapi/v1/margin/apiKey"
LIST = "/sapi/v1/margin/api-key-list"

# Binance's published HMAC example (API docs, "SIGNED endpoint examples").
VECTOR_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
VECTOR_PAYLOAD = (
    b"symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    b"&recvWindow=5000&timestamp=1499827319559"
)
VECTOR_SIGNATURE = b"c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def hmac_key(secret: str) -> ApiKey:
    return ApiKey("k", "a", False, "HMAC_SHA256", secret, None, "n", "", (), "TRADE", 0)


def test_binance_hmac_test_vector_verifies_and_agrees_with_the_client_signer() -> None:
    key = hmac_key(VECTOR_SECRET)
    auth.verify_signature(key, VECTOR_PAYLOAD + b"&signature=" + VECTOR_SIGNATURE, b"")
    auth.verify_signature(key, VECTOR_PAYLOAD + b"&signature=" + VECTOR_SIGNATURE.upper(), b"")
    assert HmacSigner(VECTOR_SECRET).sign(VECTOR_PAYLOAD).encode() == VECTOR_SIGNATURE


def test_binance_mixed_query_and_body_example_verifies() -> None:
    # Binance's example 3: the payload is the query string and the body with no separator.
    query = b"symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
    body = b"quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    signature = HmacSigner(VECTOR_SECRET).sign(query + body).encode()
    auth.verify_signature(hmac_key(VECTOR_SECRET), query, body + b"&signature=" + signature)
    with pytest.raises(errors.ExchangeError) as raised:
        auth.verify_signature(hmac_key(VECTOR_SECRET), query + b"&", body + b"&signature=" + signature)
    assert raised.value.code == -1022


def flip_one_byte(query: bytes, body: bytes) -> tuple[bytes, bytes]:
    i = body.index(b"apiName=") + len(b"apiName=")
    return query, body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1:]


@pytest.mark.parametrize("key_type", ["HMAC", "RSA", "ED25519"])
def test_signed_create_works_and_one_tampered_byte_is_rejected(
    make_wire: Callable[..., Wire], key_type: str
) -> None:
    wire = make_wire(key_type)
    good = wire.send("POST", CREATE, body_params={"apiName": "desk"})
    assert good.status_code == 200, good.text
    bad = wire.send("POST", CREATE, body_params={"apiName": "desk"}, tamper=flip_one_byte)
    assert (bad.status_code, error_code(bad)) == (400, -1022)


def test_parameters_split_between_query_string_and_body(wire: Wire) -> None:
    response = wire.send("POST", CREATE, {"apiName": "split", "symbol": "BTCUSDT"},
                         body_params={"ip": "10.0.0.1,10.0.0.2"})
    assert response.status_code == 200, response.text
    listed = wire.send("GET", LIST, {"symbol": "BTCUSDT"}).json()
    # The Query Special Key docs' shape: the "initial state" 0.0.0.0 first, then the addresses.
    assert [(k["apiName"], k["ip"]) for k in listed] == [("split", "0.0.0.0,10.0.0.1,10.0.0.2")]


def test_query_value_wins_over_body_value(wire: Wire) -> None:
    response = wire.send("POST", CREATE, {"apiName": "from-query"},
                         body_params={"apiName": "from-body"})
    assert response.status_code == 200, response.text
    assert [k["apiName"] for k in wire.send("GET", LIST).json()] == ["from-query"]


def test_percent_encoded_non_ascii_api_name_is_kept(wire: Wire) -> None:
    name = "desk é 東京"
    response = wire.send("POST", CREATE, body_params={"apiName": name})
    assert response.status_code == 200, response.text
    assert [k["apiName"] for k in wire.send("GET", LIST).json()] == [name]


def test_unencoded_non_ascii_payload_fails_signature(wire: Wire) -> None:
    def raw_utf8(query: bytes, body: bytes) -> tuple[bytes, bytes]:
        return query, body.replace(quote("é").encode(), "é".encode())

    response = wire.send("POST", CREATE, body_params={"apiName": "é"}, tamper=raw_utf8)
    assert error_code(response) == -1022


def test_missing_api_key_header_is_a_format_error(wire: Wire) -> None:
    response = wire.send("GET", LIST, api_key=None)
    assert (response.status_code, error_code(response)) == (401, -2014)


def test_unknown_api_key_is_rejected(wire: Wire) -> None:
    response = wire.send("GET", LIST, api_key="A" * 64)
    assert (response.status_code, error_code(response)) == (401, -2015)


def test_a_special_key_cannot_call_sapi(wire: Wire) -> None:
    created = wire.send("POST", CREATE, body_params={"apiName": "hmac-special"}).json()
    special = Wire(wire.base_url, {"apiKey": created["apiKey"], "secretKey": created["secretKey"]})
    assert error_code(special.send("GET", LIST)) == -2015


def test_timestamp_rules(wire: Wire) -> None:
    now = int(time.time() * 1000)
    assert error_code(wire.send("GET", LIST, timestamp=now + 2000)) == -1021
    assert error_code(wire.send("GET", LIST, timestamp=now - 6000)) == -1021
    assert wire.send("GET", LIST, timestamp=now - 6000, recv_window=10000).status_code == 200
    assert wire.send("GET", LIST, timestamp=now * 1000).status_code == 200  # microseconds
    assert error_code(wire.send("GET", LIST, recv_window=60001)) == -1131


def test_missing_timestamp_and_signature_are_mandatory(wire: Wire) -> None:
    def drop_timestamp(query: bytes, body: bytes) -> tuple[bytes, bytes]:
        parts = [p for p in query.split(b"&") if not p.startswith(b"timestamp=")]
        return b"&".join(parts), body

    assert error_code(wire.send("GET", LIST, tamper=drop_timestamp)) == -1102
    assert error_code(wire.send("GET", LIST, signed=False)) == -1102


def test_unknown_parameter_is_refused(wire: Wire) -> None:
    assert error_code(wire.send("GET", LIST, {"colour": "blue"})) == -1103


def test_server_time_needs_no_signature(wire: Wire) -> None:
    import requests

    before = int(time.time() * 1000)
    server = requests.get(f"{wire.base_url}/api/v3/time", timeout=5).json()["serverTime"]
    assert before - 1000 <= server <= int(time.time() * 1000) + 1000
