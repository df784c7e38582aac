"""Every documented (and every recorded) response shape of the endpoints we call, through our readers.

`documented/` holds the docs' response examples as facts, each with its URL and the date read;
`recorded/` holds what `python -m margin_special_keys.gitops preflight --record DIR` wrote against
an exchange, redacted. A shape the reader cannot take fails here, not on a firm's first `pulumi up`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from margin_special_keys.binance.client import (
    SpecialKey,
    read_created_key,
    read_key_list,
    read_server_time,
    read_usable_pairs,
)
from margin_special_keys.key_type import KeyType

HERE = Path(__file__).parent
FIXTURES = sorted((HERE / "documented").glob("*.json")) + sorted((HERE / "recorded").rglob("*.json"))


def fixture_cases() -> list[tuple[str, str, Any]]:
    cases = []
    for path in FIXTURES:
        data = json.loads(path.read_text())
        if data.get("status", 200) != 200:
            continue  # a recorded error answer: the error mapping's business, not the readers'
        for i, response in enumerate(data["responses"]):
            cases.append((f"{path.parent.name}/{path.stem}[{i}]", data["endpoint"], response))
    return cases


def read(endpoint: str, response: Any) -> Any:
    method_path = endpoint.split("?", 1)[0]
    if method_path == "POST /sapi/v1/margin/apiKey":
        return read_created_key(response)
    if method_path == "GET /sapi/v1/margin/apiKey":
        return SpecialKey.from_wire(response)
    if method_path == "GET /sapi/v1/margin/api-key-list":
        return read_key_list(response)
    if method_path == "GET /sapi/v1/margin/isolated/account":
        return read_usable_pairs(response)
    if method_path == "GET /api/v3/time":
        return read_server_time(response)
    if method_path in ("GET /sapi/v1/account/apiRestrictions", "GET /sapi/v1/margin/account",
                       "GET /api/v3/account"):
        assert isinstance(response, dict)
    return response  # endpoints whose answers we only pass through (restrictions, account)


@pytest.mark.parametrize(("name", "endpoint", "response"), fixture_cases(), ids=lambda v: str(v)[:60])
def test_every_documented_and_recorded_shape_is_read(name: str, endpoint: str, response: Any) -> None:
    read(endpoint, response)


def test_there_are_fixtures_for_every_endpoint_we_call() -> None:
    endpoints = {json.loads(p.read_text())["endpoint"] for p in (HERE / "documented").glob("*.json")}
    assert endpoints >= {"POST /sapi/v1/margin/apiKey", "GET /sapi/v1/margin/apiKey",
                         "GET /sapi/v1/margin/api-key-list", "GET /sapi/v1/margin/isolated/account",
                         "GET /api/v3/time"}
    for path in (HERE / "documented").glob("*.json"):
        data = json.loads(path.read_text())
        assert data["source"].startswith("https://") and data["read"], path.name


def documented(stem: str) -> list[Any]:
    return list(json.loads((HERE / "documented" / f"{stem}.json").read_text())["responses"])


def test_initial_state_address_is_no_address_wherever_it_stands() -> None:
    first, only_zero, nulls = (SpecialKey.from_wire(r) for r in documented("query-special-key"))
    assert first is not None and first.ips == ("192.168.0.1", "192.168.0.2")
    assert first.key_type is KeyType.RSA and first.permission_mode == "TRADE"
    assert only_zero is not None and only_zero.ips == () and only_zero.key_type is KeyType.ED25519
    assert nulls is not None and nulls.ips == () and nulls.api_name == "" and nulls.key_type is None


def test_type_in_any_documented_spelling_or_case() -> None:
    for spelling, expected in (("HMAC_SHA256", KeyType.HMAC), ("hmac_sha256", KeyType.HMAC),
                               ("Ed25519", KeyType.ED25519), ("ED25519", KeyType.ED25519),
                               ("ed25519", KeyType.ED25519), ("rsa", KeyType.RSA), ("DSA", None)):
        assert KeyType.from_wire(spelling) is expected
    created = [read_created_key(r) for r in documented("create-special-key")]
    assert [c.key_type for c in created] == [KeyType.HMAC, KeyType.RSA, KeyType.ED25519, None]
    assert created[0].secret_key is not None and created[1].secret_key is None


def test_a_body_without_an_api_key_is_no_key() -> None:
    assert SpecialKey.from_wire({}) is None
    assert SpecialKey.from_wire({"apiName": "x", "ip": "0.0.0.0"}) is None
    assert read_key_list({}) == []
    assert [k.api_name for k in read_key_list([{"apiName": "no key"}, {"apiKey": "A1"}])] == [""]


def test_pairs_that_do_not_exist_or_are_disabled_are_not_used() -> None:
    data = json.loads((HERE / "documented" / "isolated-account.json").read_text())
    assert read_usable_pairs(data["responses"][0]) == data["usable"]
    assert read_usable_pairs({"assets": [{"symbol": "X1", "isolatedCreated": "false"}]}) == []


def test_numbers_may_arrive_as_strings() -> None:
    assert [read_server_time(r) for r in documented("server-time")] == [1499827319559] * 2


def fields_outside(shape: Any, value: Any, where: str = "") -> list[str]:
    """Every field of `value` that the shape (what our readers read) does not name."""
    if isinstance(shape, list) and isinstance(value, list):
        return [f for item in value for f in fields_outside(shape[0], item, f"{where}[]")]
    if isinstance(shape, dict) and isinstance(value, dict):
        outside = [f"{where}.{k}" for k in value if k not in shape]
        return outside + [f for k in value if k in shape
                          for f in fields_outside(shape[k], value[k], f"{where}.{k}")]
    return []


@pytest.mark.parametrize("path", sorted((HERE / "recorded").rglob("*.json")), ids=lambda p: p.name)
def test_a_recording_keeps_only_the_fields_our_readers_read(path: Path) -> None:
    from margin_special_keys.binance.client import ANSWER_FIELDS, ERROR_FIELDS

    data = json.loads(path.read_text())
    endpoint = data["endpoint"].split("?", 1)[0]
    shape = ANSWER_FIELDS[endpoint] if data.get("status", 200) == 200 else ERROR_FIELDS
    for response in data["responses"]:
        assert fields_outside(shape, response) == []
