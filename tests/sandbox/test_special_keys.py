"""The special-key endpoints of the sandbox: shapes, rules and Binance's codes."""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.sandbox.conftest import Wire, error_code

KEY = "/sapi/v1/margin/apiKey"
LIST = "/sapi/v1/margin/api-key-list"
EDIT_IP = "/sapi/v1/margin/apiKey/ip"
EXIT = "/sapi/v1/margin/exit-special-key-mode"


def public_pem(key: object) -> str:
    assert isinstance(key, (ed25519.Ed25519PrivateKey, rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey))
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def ed25519_pem() -> str:
    return public_pem(ed25519.Ed25519PrivateKey.generate())


def test_hmac_key_gets_server_made_key_and_secret(wire: Wire) -> None:
    body = wire.send("POST", KEY, body_params={"apiName": "h"}).json()
    assert body["type"] == "HMAC_SHA256"
    assert len(body["apiKey"]) == 64 and body["apiKey"].isalnum()
    assert len(body["secretKey"]) == 64 and body["secretKey"].isalnum()


def test_public_key_keys_have_a_null_secret(wire: Wire) -> None:
    ed = wire.send("POST", KEY, body_params={"apiName": "e", "publicKey": ed25519_pem()}).json()
    assert ed["secretKey"] is None and ed["type"] == "Ed25519"
    for bits in (2048, 4096):
        pem = public_pem(rsa.generate_private_key(public_exponent=65537, key_size=bits))
        r = wire.send("POST", KEY, body_params={"apiName": f"r{bits}", "publicKey": pem}).json()
        assert r["secretKey"] is None and r["type"] == "RSA"


def test_public_keys_of_wrong_type_size_or_encoding_are_refused(wire: Wire) -> None:
    small = public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    ec_key = public_pem(ec.generate_private_key(ec.SECP256R1()))
    pkcs1 = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()
    for pem in (small, ec_key, pkcs1, "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----"):
        response = wire.send("POST", KEY, body_params={"apiName": "x", "publicKey": pem})
        assert error_code(response) == -3026, (pem[:40], response.text)
    assert wire.send("GET", LIST).json() == []


def test_permission_mode_is_honoured_for_ed25519_only(wire: Wire) -> None:
    ed = wire.send("POST", KEY, body_params={
        "apiName": "e", "publicKey": ed25519_pem(), "permissionMode": "READ"}).json()
    rsa_pem = public_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    rs = wire.send("POST", KEY, body_params={
        "apiName": "r", "publicKey": rsa_pem, "permissionMode": "READ"}).json()
    modes = {k["apiKey"]: k["permissionMode"] for k in wire.send("GET", LIST).json()}
    assert modes == {ed["apiKey"]: "READ", rs["apiKey"]: "TRADE"}
    bad = wire.send("POST", KEY, body_params={"apiName": "b", "permissionMode": "ADMIN"})
    assert error_code(bad) == -3026


def test_ip_rules(wire: Wire) -> None:
    none = wire.send("POST", KEY, body_params={"apiName": "no-ip"}).json()
    assert wire.send("GET", KEY, {"apiKey": none["apiKey"]}).json()["ip"] == "0.0.0.0"
    thirty = ",".join(f"10.0.0.{i}" for i in range(1, 31))
    assert wire.send("POST", KEY, body_params={"apiName": "30", "ip": thirty}).status_code == 200
    too_many = thirty + ",10.0.0.31"
    assert error_code(wire.send("POST", KEY, body_params={"apiName": "31", "ip": too_many})) == -3026
    assert error_code(wire.send("POST", KEY, body_params={"apiName": "c", "ip": "10.0.0.0/8"})) == -1100
    assert error_code(wire.send("POST", KEY, body_params={"apiName": "h", "ip": "example.com"})) == -1100
    assert error_code(wire.send("POST", KEY, body_params={"apiName": "o", "ip": "10.0.0.256"})) == -3026
    v6 = wire.send("POST", KEY, body_params={"apiName": "v6", "ip": "2001:DB8::1"}).json()
    assert wire.send("GET", KEY, {"apiKey": v6["apiKey"]}).json()["ip"] == "0.0.0.0,2001:db8::1"


def test_symbol_and_name_rules(wire: Wire) -> None:
    assert error_code(wire.send("POST", KEY, body_params={"apiName": "x", "symbol": "BNBUSDT"})) == -3028
    assert error_code(wire.send("POST", KEY, body_params={"apiName": "x", "symbol": "btc-usdt"})) == -1100
    assert error_code(wire.send("POST", KEY, body_params={})) == -1102
    assert error_code(wire.send("POST", KEY, body_params={"apiName": "a\nb"})) == -1100


def test_query_list_and_scoping_by_symbol(wire: Wire) -> None:
    cross = wire.send("POST", KEY, body_params={"apiName": "cross"}).json()["apiKey"]
    btc = wire.send("POST", KEY, body_params={"apiName": "btc", "symbol": "BTCUSDT"}).json()["apiKey"]
    assert [k["apiKey"] for k in wire.send("GET", LIST).json()] == [cross]
    assert [k["apiKey"] for k in wire.send("GET", LIST, {"symbol": "BTCUSDT"}).json()] == [btc]
    shown = wire.send("GET", KEY, {"apiKey": btc, "symbol": "BTCUSDT"}).json()
    assert set(shown) == {"apiKey", "ip", "apiName", "type", "permissionMode"}
    # The isolated key is not found in the cross margin scope: by default (dialect missing-key=
    # empty) an unknown apiKey is answered 200 `{}`, the reading that fools a careless client.
    assert wire.send("GET", KEY, {"apiKey": btc}).json() == {}
    assert wire.send("GET", KEY, {"apiKey": "B" * 64}).json() == {}


def test_without_api_key_only_a_single_match_is_acted_on(wire: Wire) -> None:
    only = wire.send("POST", KEY, body_params={"apiName": "only"}).json()["apiKey"]
    assert wire.send("GET", KEY).json()["apiKey"] == only
    assert wire.send("PUT", EDIT_IP, body_params={"ip": "10.9.9.9"}).status_code == 200
    wire.send("POST", KEY, body_params={"apiName": "second"})
    assert error_code(wire.send("GET", KEY)) == -1102
    assert error_code(wire.send("PUT", EDIT_IP, body_params={"ip": "10.9.9.8"})) == -1102


def test_edit_ip_replaces_the_list(wire: Wire) -> None:
    key = wire.send("POST", KEY, body_params={"apiName": "k", "ip": "10.0.0.1,10.0.0.2"}).json()["apiKey"]
    assert wire.send("PUT", EDIT_IP, body_params={"apiKey": key, "ip": "10.0.0.3"}).json() == {}
    assert wire.send("GET", KEY, {"apiKey": key}).json()["ip"] == "0.0.0.0,10.0.0.3"
    assert error_code(wire.send("PUT", EDIT_IP, body_params={"apiKey": key})) == -1102


def test_delete_by_api_key_or_by_name(wire: Wire) -> None:
    a1 = wire.send("POST", KEY, body_params={"apiName": "shared"}).json()["apiKey"]
    wire.send("POST", KEY, body_params={"apiName": "shared"})
    keep = wire.send("POST", KEY, body_params={"apiName": "other"}).json()["apiKey"]
    # With apiKey, apiName is ignored: only that key goes.
    assert wire.send("DELETE", KEY, {"apiKey": a1, "apiName": "other"}).json() == {}
    assert sorted(k["apiName"] for k in wire.send("GET", LIST).json()) == ["other", "shared"]
    # By name alone, every key of that name goes.
    wire.send("POST", KEY, body_params={"apiName": "shared"})
    assert wire.send("DELETE", KEY, {"apiName": "shared"}).json() == {}
    assert [k["apiKey"] for k in wire.send("GET", LIST).json()] == [keep]
    assert wire.send("DELETE", KEY, {"apiKey": a1}).json() == {}  # gone: missing-key=empty
    assert error_code(wire.send("DELETE", KEY, {})) == -1102


def test_delete_parameters_in_a_body_are_refused(wire: Wire) -> None:
    """The margin API reads a DELETE's parameters from the query string only (reported since
    January 2026): a DELETE whose parameters are in a form body misses its timestamp."""
    key = wire.send("POST", KEY, body_params={"apiName": "k"}).json()["apiKey"]
    refused = wire.send("DELETE", KEY, body_params={"apiKey": key})
    assert error_code(refused) == -1102 and "timestamp" in refused.json()["msg"]
    assert [k["apiKey"] for k in wire.send("GET", LIST).json()] == [key]


def test_at_most_thirty_api_keys_per_account_normal_keys_included(wire: Wire) -> None:
    for i in range(29):  # the account's own normal key is the 30th
        assert wire.send("POST", KEY, body_params={"apiName": f"k{i}"}).status_code == 200
    refused = wire.send("POST", KEY, body_params={"apiName": "one-too-many"})
    assert error_code(refused) == -3026 and "30 API keys" in refused.json()["msg"]


def test_unsupported_account_types(make_wire: Callable[..., Wire]) -> None:
    pm = make_wire("HMAC", account_type="PORTFOLIO_MARGIN")
    refused = pm.send("POST", KEY, body_params={"apiName": "x"})
    assert error_code(refused) == -1020 and "UNSUPPORTED_OPERATION" in refused.json()["msg"]
    pmpro = make_wire("HMAC", account_type="PORTFOLIO_MARGIN_PRO")
    assert pmpro.send("POST", KEY, body_params={"apiName": "x"}).status_code == 200


def test_exit_special_key_mode_deletes_the_cross_keys_and_starts_a_cooldown(wire: Wire) -> None:
    wire.send("POST", KEY, body_params={"apiName": "a"})
    wire.send("POST", KEY, body_params={"apiName": "a2"})
    isolated = wire.send("POST", KEY, body_params={"apiName": "b", "symbol": "ETHUSDT"}).json()
    response = wire.send("POST", EXIT, {})
    assert response.json() == {} and response.headers["X-SAPI-USED-UID-WEIGHT-1M"] == "10"
    assert wire.send("GET", LIST).json() == []
    listed = wire.send("GET", LIST, {"symbol": "ETHUSDT"}).json()
    assert [k["apiKey"] for k in listed] == [isolated["apiKey"]]
    refused = wire.send("POST", KEY, body_params={"apiName": "c"}).json()["msg"]
    assert "24 hours" in refused and "created again from 20" in refused


def test_isolated_account_lists_the_account_pairs(wire: Wire) -> None:
    info = wire.send("GET", "/sapi/v1/margin/isolated/account")
    assert info.headers["X-SAPI-USED-UID-WEIGHT-1M"] == "10"
    assert [a["symbol"] for a in info.json()["assets"]] == ["BTCUSDT", "ETHUSDT"]
    only = wire.send("GET", "/sapi/v1/margin/isolated/account", {"symbols": "ETHUSDT"}).json()
    assert [a["symbol"] for a in only["assets"]] == ["ETHUSDT"]
    assert error_code(wire.send("GET", "/sapi/v1/margin/isolated/account", {"symbols": "SOLUSDT"})) == -3028
