"""MarginSpecialKey on the real engine and the sandbox: what `pulumi up` does to the exchange."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.harness import PulumiProject, SandboxProcess


def by_name(keys: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k["apiName"]: k for k in keys}


def test_create_all_key_types_hold_secrets_only_as_ciphertext_then_destroy(
    project: PulumiProject, sandbox: SandboxProcess, account: dict[str, str]
) -> None:
    project.set_keys([
        {"name": "ed-cross", "ipWhitelist": ["10.1.2.3", "2001:db8::1"]},
        {"name": "rsa-btc", "keyType": "RSA", "symbol": "BTCUSDT", "ipWhitelist": ["10.1.2.4"]},
        {"name": "hmac-eth", "keyType": "HMAC", "symbol": "ETHUSDT", "allowAnyIp": True},
    ])
    project.up()
    project.expect_no_changes()

    on_exchange = by_name(sandbox.special_keys(account["accountId"]))
    assert set(on_exchange) == {"ed-cross", "rsa-btc", "hmac-eth"}
    assert on_exchange["ed-cross"]["type"] == "Ed25519"
    assert on_exchange["ed-cross"]["symbol"] is None
    assert on_exchange["ed-cross"]["ips"] == ["10.1.2.3", "2001:db8::1"]
    assert on_exchange["rsa-btc"]["type"] == "RSA"
    assert on_exchange["rsa-btc"]["symbol"] == "BTCUSDT"
    assert on_exchange["hmac-eth"]["type"] == "HMAC_SHA256"
    assert on_exchange["hmac-eth"]["ips"] == []

    outputs = project.outputs()
    for name, key in on_exchange.items():
        assert outputs["keys"][name]["apiKey"] == key["apiKey"]
    shown = project.outputs(show_secrets=True)
    secrets = shown["credentials"]
    assert "BEGIN PRIVATE KEY" in secrets["ed-cross"]["privateKey"]
    assert len(secrets["hmac-eth"]["secretKey"]) == 64
    # One secret output per key too, so a consumer can take only its own.
    for name in on_exchange:
        assert shown[f"credentials-{name}"] == secrets[name]
        assert outputs[f"credentials-{name}"] == "[secret]"

    # The private key and the HMAC secret are in the state only as ciphertext; the provider's
    # credentials not at all.
    exported = project.run("stack", "export").stdout
    state_files = "".join(p.read_text() for p in (project.directory / "state").rglob("*.json"))
    body = secrets["ed-cross"]["privateKey"].split("-----")[2].strip().splitlines()[0]
    for text in (exported, state_files):
        assert body not in text and secrets["hmac-eth"]["secretKey"] not in text
        assert account["apiKey"] not in text
        assert account["privateKey"].split("-----")[2].strip().splitlines()[0] not in text
    held = {r["urn"].rsplit("::", 1)[-1]: r["outputs"]
            for r in json.loads(exported)["deployment"]["resources"]}
    assert "ciphertext" in held["ed-cross"]["private_key"]
    assert "ciphertext" in held["hmac-eth"]["secret_key"]

    project.destroy()
    assert sandbox.special_keys(account["accountId"]) == []


KEY = "/sapi/v1/margin/apiKey"


@pytest.mark.long
def test_day_two_edits_updates_replaces_recreates_and_restores_each_key_as_declared(
    project: PulumiProject, sandbox: SandboxProcess, account: dict[str, str]
) -> None:
    """One stack on its second day, as a pull request and the exchange leave it: an IP change
    (an in-place update), a new apiName (a replacement, new key first), a key deleted by hand
    (refresh drops it, up makes it again) and a key whose IPs were edited by hand (refresh shows
    the drift, up restores the declared list)."""
    def declared(trader_ips: list[str], renamed_to: str) -> list[dict[str, Any]]:
        return [{"name": "trader", "ipWhitelist": trader_ips},
                {"name": "renamed", "apiName": renamed_to, "ipWhitelist": ["10.0.0.1"]},
                {"name": "gone", "ipWhitelist": ["10.0.0.1"]},
                {"name": "btc", "symbol": "BTCUSDT", "ipWhitelist": ["10.0.0.1"]}]

    project.set_keys(declared(["10.0.0.1", "10.0.0.2"], "desk-a"))
    project.up()
    before = by_name(sandbox.special_keys(account["accountId"]))
    script = sandbox.script_client(account)
    script.delete_special_key(before["gone"]["apiKey"], None)
    script.edit_ip(before["btc"]["apiKey"], "BTCUSDT", ["192.0.2.99"])

    project.refresh()
    assert sorted(r["outputs"]["api_name"] for r in project.resources()) == ["btc", "desk-a", "trader"]
    project.set_keys(declared(["10.0.0.2", "10.0.0.3"], "desk-b"))
    planned = project.planned_ops()
    assert {name: planned.get(name) for name in ("trader", "renamed", "gone", "btc")} == {
        "trader": ["update"], "renamed": ["replace"], "gone": ["create"], "btc": ["update"]}
    sandbox.reset_requests()
    project.up()
    # The same addresses reordered, one of them twice: nothing to do.
    project.set_keys(declared(["10.0.0.3", "10.0.0.2", "10.0.0.3"], "desk-b"))
    project.expect_no_changes()

    after = by_name(sandbox.special_keys(account["accountId"]))
    assert set(after) == {"trader", "desk-b", "gone", "btc"}
    assert after["trader"]["apiKey"] == before["trader"]["apiKey"]  # edited in place
    assert after["trader"]["ip"] == "10.0.0.2,10.0.0.3"
    assert after["desk-b"]["apiKey"] != before["desk-a"]["apiKey"]
    assert after["gone"]["apiKey"] != before["gone"]["apiKey"]
    assert (after["btc"]["apiKey"], after["btc"]["ip"]) == (before["btc"]["apiKey"], "10.0.0.1")
    # New key first, then the old one goes: the one delete comes after both creates.
    assert [m for m in sandbox.mutations() if m[1] == KEY] == [("POST", KEY), ("POST", KEY),
                                                              ("DELETE", KEY)]
