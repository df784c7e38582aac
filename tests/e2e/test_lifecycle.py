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
        assert project.outputs()[f"credentials-{name}"] == "[secret]"

    project.destroy()
    assert sandbox.special_keys(account["accountId"]) == []


def test_ip_change_is_an_in_place_update_and_reordered_or_repeated_ips_change_nothing(
    project: PulumiProject, sandbox: SandboxProcess, account: dict[str, str]
) -> None:
    project.set_keys([{"name": "trader", "ipWhitelist": ["10.0.0.1", "10.0.0.2"]}])
    project.up()
    before = sandbox.special_keys(account["accountId"])

    project.set_keys([{"name": "trader", "ipWhitelist": ["10.0.0.2", "10.0.0.3"]}])
    assert project.planned_ops()["trader"] == ["update"]
    project.up()
    # The same addresses reordered, one of them twice: nothing to do.
    project.set_keys([{"name": "trader", "ipWhitelist": ["10.0.0.3", "10.0.0.2", "10.0.0.3"]}])
    project.expect_no_changes()

    after = sandbox.special_keys(account["accountId"])
    assert [k["apiKey"] for k in after] == [k["apiKey"] for k in before]
    assert after[0]["ip"] == "10.0.0.2,10.0.0.3"


def test_api_name_change_replaces_new_key_first(
    project: PulumiProject, sandbox: SandboxProcess, account: dict[str, str]
) -> None:
    project.set_keys([{"name": "trader", "apiName": "desk-a", "ipWhitelist": ["10.0.0.1"]}])
    project.up()
    old_key = sandbox.special_keys(account["accountId"])[0]["apiKey"]

    project.set_keys([{"name": "trader", "apiName": "desk-b", "ipWhitelist": ["10.0.0.1"]}])
    assert project.planned_ops()["trader"] == ["replace"]
    sandbox.reset_requests()
    project.up()
    project.expect_no_changes()

    keys = sandbox.special_keys(account["accountId"])
    assert [k["apiName"] for k in keys] == ["desk-b"]
    assert keys[0]["apiKey"] != old_key
    # New key first, then the old one goes.
    assert sandbox.mutations() == [("POST", "/sapi/v1/margin/apiKey"), ("DELETE", "/sapi/v1/margin/apiKey")]


def test_refresh_drops_a_key_deleted_outside_pulumi_and_up_recreates_it(
    project: PulumiProject, sandbox: SandboxProcess, account: dict[str, str]
) -> None:
    project.set_keys([{"name": "trader", "ipWhitelist": ["10.0.0.1"]}])
    project.up()
    api_key = sandbox.special_keys(account["accountId"])[0]["apiKey"]
    sandbox.script_client(account).delete_special_key(api_key, None)

    project.refresh()
    assert project.resources() == []
    project.up()
    project.expect_no_changes()
    keys = sandbox.special_keys(account["accountId"])
    assert len(keys) == 1 and keys[0]["apiKey"] != api_key


def test_ips_edited_outside_pulumi_show_as_drift_and_up_restores_them(
    project: PulumiProject, sandbox: SandboxProcess, account: dict[str, str]
) -> None:
    project.set_keys([{"name": "btc", "symbol": "BTCUSDT", "ipWhitelist": ["10.0.0.1"]}])
    project.up()
    api_key = sandbox.special_keys(account["accountId"])[0]["apiKey"]
    sandbox.script_client(account).edit_ip(api_key, "BTCUSDT", ["192.0.2.99"])

    project.refresh()
    drift = project.preview("--expect-no-changes", check=False)
    assert drift.returncode != 0, drift.output
    assert project.planned_ops()["btc"] == ["update"]
    project.up()
    project.expect_no_changes()
    keys = sandbox.special_keys(account["accountId"])
    assert [(k["apiKey"], k["ip"]) for k in keys] == [(api_key, "10.0.0.1")]


def test_state_holds_private_key_and_hmac_secret_only_as_ciphertext(
    project: PulumiProject, sandbox: SandboxProcess, account: dict[str, str]
) -> None:
    project.set_keys([
        {"name": "ed", "ipWhitelist": ["10.0.0.1"]},
        {"name": "hm", "keyType": "HMAC", "ipWhitelist": ["10.0.0.1"]},
    ])
    project.up()
    secrets = project.outputs(show_secrets=True)["credentials"]
    private_key, secret_key = secrets["ed"]["privateKey"], secrets["hm"]["secretKey"]
    exported = project.run("stack", "export").stdout
    state_files = "".join(p.read_text() for p in (project.directory / "state").rglob("*.json"))
    body = private_key.split("-----")[2].strip().splitlines()[0]
    for text in (exported, state_files):
        assert body not in text and secret_key not in text
        assert account["apiKey"] not in text
        assert account["privateKey"].split("-----")[2].strip().splitlines()[0] not in text
    by_name = {r["urn"].rsplit("::", 1)[-1]: r for r in project.resources()}
    assert "ciphertext" in by_name["ed"]["outputs"]["private_key"]
    assert "ciphertext" in by_name["hm"]["outputs"]["secret_key"]
