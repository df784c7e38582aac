"""What `gitops preflight --record` writes: only what our readers read, nothing a firm would not
hand back (balances, positions, key names, whitelisted addresses, the account's uid, secrets)."""

from __future__ import annotations

import json
from pathlib import Path

from margin_special_keys.gitops.preflight import Recorder

KEY = "K" * 64


def recorded(tmp_path: Path, method: str, path: str, body: object, status: int = 200) -> object:
    recorder = Recorder(tmp_path, secrets=["PROVIDER-SECRET"])
    recorder(method, path, {"symbol": "BTCUSDT", "signature": "sig", "timestamp": 1, "apiKey": KEY},
             status, body)
    [written] = tmp_path.glob("*.json")
    data = json.loads(written.read_text())
    assert "sig" not in data["endpoint"] and KEY not in written.read_text()
    return data["responses"][0]


def test_business_data_is_left_out_and_what_is_kept_is_replaced(tmp_path: Path) -> None:
    listed = recorded(tmp_path, "GET", "/sapi/v1/margin/api-key-list", [
        {"apiKey": KEY, "apiName": "desk-7 btc arb", "ip": "0.0.0.0,198.51.100.4,2001:db8:9::1",
         "type": "Ed25519", "permissionMode": "TRADE", "internalNote": "PROVIDER-SECRET"}])
    assert listed == [{"apiKey": "REDACTEDKEY01", "apiName": "redacted-name-01",
                       "ip": "0.0.0.0,203.0.113.1,2001:db8::2", "type": "Ed25519",
                       "permissionMode": "TRADE"}]


def test_an_account_answer_keeps_its_type_and_nothing_of_its_balances(tmp_path: Path) -> None:
    account = recorded(tmp_path, "GET", "/sapi/v1/margin/account", {
        "accountType": "MARGIN_1", "totalAssetOfBtc": "12.5", "userAssets": [
            {"asset": "BTC", "free": "12.5", "borrowed": "3"}], "tradeEnabled": True})
    assert account == {"accountType": "MARGIN_1"}


def test_the_uid_and_a_created_keys_secret_are_replaced(tmp_path: Path) -> None:
    assert recorded(tmp_path, "GET", "/api/v3/account",
                    {"uid": 354937868, "balances": [{"asset": "USDT", "free": "1000000"}]}) == {
        "uid": 100000001}


def test_an_unexpected_shape_keeps_its_type_only(tmp_path: Path) -> None:
    assert recorded(tmp_path, "GET", "/sapi/v1/margin/isolated/account",
                    {"assets": {"BTCUSDT": {"position": "9"}}, "totalNetAssetOfBtc": "4"}) == {"assets": {}}
    assert recorded(tmp_path / "x", "GET", "/api/v3/time", "an HTML page") == "REDACTED"


def test_an_error_answer_keeps_binances_code_and_message_only(tmp_path: Path) -> None:
    assert recorded(tmp_path, "GET", "/sapi/v1/margin/account",
                    {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action.",
                     "debug": "PROVIDER-SECRET"}, status=401) == {
        "code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
