"""Rotation, adoption and unknown outcomes through `pulumi up` on the real engine."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.harness import (
    FULL_TABLES,
    UNKNOWN_OUTCOME_FAULTS,
    PulumiProject,
    SandboxAccount,
    SandboxProcess,
    same_secret,
)

KEY = "/sapi/v1/margin/apiKey"


@pytest.mark.long
def test_rotation_by_keepers_or_by_age_makes_each_new_key_before_any_old_one_goes(
    project: PulumiProject, sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    project.set_keys([{"name": "bot", "keepers": {"rotation": "2026-11"}, "ipWhitelist": ["10.0.0.1"]},
                      {"name": "aged", "rotateAfterDays": 30}])
    project.up()
    old = {k["apiName"]: k["apiKey"] for k in sandbox.special_keys(account["accountId"])}

    # Thirty-one days later, as far as the state knows, for the key rotated by age; a new
    # keepers value for the other.
    state = project.export()
    for resource in state["deployment"]["resources"]:
        if resource["type"].endswith("MarginSpecialKey") and resource["outputs"]["api_name"] == "aged":
            resource["outputs"]["created_at_ms"] = (time.time() - 31 * 86400) * 1000
    (project.directory / "aged.json").write_text(json.dumps(state))
    project.run("stack", "import", "--file", "aged.json")
    project.set_keys([{"name": "bot", "keepers": {"rotation": "2026-12"}, "ipWhitelist": ["10.0.0.1"]},
                      {"name": "aged", "rotateAfterDays": 30}])
    planned = project.planned_ops()
    assert (planned["bot"], planned["aged"]) == (["replace"], ["replace"])
    sandbox.reset_requests()
    project.up()
    project.expect_no_changes()  # and a fresh key is not due
    # Both new keys are made before either old key is deleted: both live in between.
    assert sandbox.mutations() == [("POST", KEY), ("POST", KEY), ("DELETE", KEY), ("DELETE", KEY)]
    new = {k["apiName"]: k["apiKey"] for k in sandbox.special_keys(account["accountId"])}
    assert set(new) == {"bot", "aged"} and not set(new.values()) & set(old.values())
    assert project.outputs()["keys"]["bot"]["apiKey"] == new["bot"]


def test_full_account_refuses_a_create_first_replacement_at_preview(
    project: PulumiProject, sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    project.set_keys([{"name": "k", "keepers": {"v": "1"}}])
    project.up()
    others = sandbox.script_client(account)
    for i in range(28):
        others.create_special_key(f"other-{i}", None if i % 3 else "ETHUSDT", [], None, None)

    project.set_keys([{"name": "k", "keepers": {"v": "2"}}])
    sandbox.reset_requests()
    refused = project.preview(check=False)
    assert refused.returncode != 0
    assert "room for 0 new API key(s)" in refused.output
    assert "deleteBeforeReplace: true" in refused.output
    assert sandbox.mutations() == []

    project.set_keys([{"name": "k", "keepers": {"v": "2"}, "deleteBeforeReplace": True}])
    project.up()  # converging afterwards: the fifteen-key test below
    assert sandbox.mutations()[-2:] == [("DELETE", KEY), ("POST", KEY)]
    assert len(sandbox.special_keys(account["accountId"])) == 29


# Every key type in `make proof`; in `make test` here Ed25519, and every key type at the provider
# level (tests/provider/test_rotation_and_adoption.py).
@pytest.mark.long
@pytest.mark.parametrize("key_type", ["ED25519", "RSA", "HMAC"] if FULL_TABLES else ["ED25519"])
def test_adopt_an_existing_key_as_it_is_then_apply_the_declared_ips_and_destroy(
    project: PulumiProject, sandbox: SandboxProcess, account: SandboxAccount, key_type: str
) -> None:
    from tests.provider.test_rotation_and_adoption import keypair

    public, private = keypair(key_type) if key_type != "HMAC" else (None, None)
    made = sandbox.script_client(account).create_special_key(
        "legacy", "BTCUSDT", ["10.0.0.9"], public, None)
    # Adoption with no declared whitelist is refused: it would say nothing of the key's IPs.
    project.set_keys([{"name": "legacy", "symbol": "BTCUSDT", "keyType": key_type,
                       "adoptApiKey": made.api_key}], as_given=True)
    secret_path = "adoptSecretKey" if key_type == "HMAC" else "adoptPrivateKey"
    project.run("config", "set", "--secret", "--path", f"keys[0].{secret_path}",
                input=made.secret_key if key_type == "HMAC" else private)
    refused = project.preview(check=False)
    assert refused.returncode != 0 and "keys[0].ipWhitelist: is empty" in refused.output
    # Declared: another whitelist than the key has. Adoption takes the key as it is.
    project.run("config", "set", "--path", "keys[0].ipWhitelist[0]", "10.0.0.10")
    sandbox.reset_requests()
    project.up()
    assert sandbox.mutations() == []  # adopted as it is
    assert [(k["apiKey"], k["ips"]) for k in sandbox.special_keys(account["accountId"])] == [
        (made.api_key, ["10.0.0.9"])]
    held = project.outputs(show_secrets=True)["credentials"]["legacy"]
    assert same_secret(held.get("secretKey" if key_type == "HMAC" else "privateKey"),
                       made.secret_key if key_type == "HMAC" else private)
    assert (made.secret_key or private or "x") not in project.run("stack", "export").stdout

    # The declared whitelist shows plainly as an update in the next preview, and up applies it.
    assert project.planned_ops()["legacy"] == ["update"]
    project.up()
    assert [(k["apiKey"], k["ips"]) for k in sandbox.special_keys(account["accountId"])] == [
        (made.api_key, ["10.0.0.10"])]
    project.expect_no_changes()
    project.destroy()
    assert sandbox.special_keys(account["accountId"]) == []


def test_an_unmanaged_key_of_the_same_name_is_refused_at_up(
    project: PulumiProject, sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    theirs = sandbox.script_client(account).create_special_key("desk", None, [], None, None)
    project.set_keys([{"name": "desk"}])
    refused = project.up(check=False)
    assert refused.returncode != 0
    assert theirs.api_key in refused.output and "adoptApiKey" in refused.output
    assert [k["apiKey"] for k in sandbox.special_keys(account["accountId"])] == [theirs.api_key]
    assert project.resources() == []


FAULTS = UNKNOWN_OUTCOME_FAULTS


# Every fault in `make proof`; in `make test` the one whose outcome only a listing can tell (the
# exchange acted, the answer never came), and every fault for each operation at the provider
# level (tests/provider/test_reconciliation.py), where each is settled within one call.
@pytest.mark.parametrize("fault", list(FAULTS) if FULL_TABLES else ["connection dropped after acting"])
def test_up_through_a_faulty_exchange_agrees_with_it(
    project: PulumiProject, clean_faults: SandboxProcess, account: SandboxAccount, fault: str
) -> None:
    sandbox = clean_faults
    for method in ("POST", "PUT", "DELETE"):
        sandbox.add_fault(method=method, path=KEY if method != "PUT" else KEY + "/ip", count=1,
                          **FAULTS[fault])
    project.set_keys([{"name": "hm", "keyType": "HMAC", "ipWhitelist": ["10.0.0.1"]}])
    project.up()
    keys = sandbox.special_keys(account["accountId"])
    state = project.resources()
    assert [k["apiKey"] for k in keys] == [r["id"] for r in state]

    project.set_keys([{"name": "hm", "keyType": "HMAC", "ipWhitelist": ["10.0.0.2"]}])
    project.up()
    assert [(k["apiKey"], k["ip"]) for k in sandbox.special_keys(account["accountId"])] == [
        (state[0]["id"], "10.0.0.2")]
    project.expect_no_changes()
    project.destroy()
    assert sandbox.special_keys(account["accountId"]) == []


def rotate_all(keys: list[dict[str, Any]], version: str, **extra: Any) -> list[dict[str, Any]]:
    return [{**k, "keepers": {"v": version}, **extra} for k in keys]


@pytest.mark.long
def test_rotating_fifteen_keys_with_room_for_fourteen_is_refused_whole_or_done_whole(
    project: PulumiProject, sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    """Pulumi makes every create-first replacement before it deletes any old key: 15 of them on
    an account with room for 14 more must be refused by the preview, never stop half way."""
    keys = [{"name": f"bot-{i:02d}", "ipWhitelist": ["10.0.0.1"]} for i in range(15)]
    project.set_keys(rotate_all(keys, "1"))
    project.up()
    old = {k["apiKey"] for k in sandbox.special_keys(account["accountId"])}
    assert len(old) == 15  # + the provider's own key: room for 14 more

    project.set_keys(rotate_all(keys, "2"))
    sandbox.reset_requests()
    refused = project.run("up", "--yes", check=False)  # `pulumi up` previews first
    assert refused.returncode != 0
    assert "room for 14 new API key(s)" in refused.output and "this run plans 15" in refused.output
    assert "deleteBeforeReplace: true" in refused.output
    assert sandbox.mutations() == []
    assert {k["apiKey"] for k in sandbox.special_keys(account["accountId"])} == old  # no mix

    project.set_keys(rotate_all(keys, "2", deleteBeforeReplace=True))
    project.run("up", "--yes")
    mutations = sandbox.mutations()
    assert mutations[0] == ("DELETE", KEY)  # each old key goes before its new one is made
    assert sorted(mutations) == [("DELETE", KEY)] * 15 + [("POST", KEY)] * 15
    new = {k["apiKey"] for k in sandbox.special_keys(account["accountId"])}
    assert len(new) == 15 and not new & old  # every key rotated, none left behind
    project.expect_no_changes()
