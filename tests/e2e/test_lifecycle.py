"""MarginSpecialKey on the real engine and the sandbox: what `pulumi up` does to the exchange."""

from __future__ import annotations

from typing import Any

from tests.harness import PulumiProject, SandboxProcess


def by_name(keys: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k["apiName"]: k for k in keys}


def test_create_all_key_types_then_destroy(
    project: PulumiProject, sandbox: SandboxProcess, account: dict[str, str]
) -> None:
    project.set_keys([
        {"name": "ed-cross", "ipWhitelist": ["10.1.2.3", "2001:db8::1"]},
        {"name": "rsa-btc", "keyType": "RSA", "symbol": "BTCUSDT", "ipWhitelist": ["10.1.2.4"]},
        {"name": "hmac-eth", "keyType": "HMAC", "symbol": "ETHUSDT"},
    ])
    project.up()
    project.expect_no_changes()

    on_exchange = by_name(sandbox.special_keys(account["accountId"]))
    assert set(on_exchange) == {"ed-cross", "rsa-btc", "hmac-eth"}
    assert on_exchange["ed-cross"]["type"] == "Ed25519"
    assert on_exchange["ed-cross"]["symbol"] is None
    assert on_exchange["ed-cross"]["ip"] == "10.1.2.3,2001:db8::1"
    assert on_exchange["rsa-btc"]["type"] == "RSA"
    assert on_exchange["rsa-btc"]["symbol"] == "BTCUSDT"
    assert on_exchange["hmac-eth"]["type"] == "HMAC_SHA256"
    assert on_exchange["hmac-eth"]["ip"] == "0.0.0.0"

    outputs = project.outputs()
    for name, key in on_exchange.items():
        assert outputs["keys"][name]["apiKey"] == key["apiKey"]
    secrets = project.outputs(show_secrets=True)["credentials"]
    assert "BEGIN PRIVATE KEY" in secrets["ed-cross"]["privateKey"]
    assert len(secrets["hmac-eth"]["secretKey"]) == 64

    project.destroy()
    assert sandbox.special_keys(account["accountId"]) == []
