"""The GitOps runner over several stacks, one per sandbox account, on the real engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.fleet import Fleet, declared_fleet, rows
from tests.harness import SandboxProcess, allow_endpoint


@pytest.fixture
def fleet(tmp_path: Path, pulumi_home: Path, sandbox: SandboxProcess) -> Fleet:
    """Two stacks, one account each."""
    return declared_fleet(tmp_path, pulumi_home, sandbox, 2)


@pytest.mark.long
def test_runner_applies_previews_and_reports_every_stack_and_never_creates_one(fleet: Fleet) -> None:
    code, summary, md, progress = fleet.runner("up")
    assert code == 0, progress
    assert {s: r["changes"].get("create") for s, r in rows(summary).items()} == {
        "desk-a": 2, "desk-b": 1}  # the keys; never the Stack resource
    assert len(fleet.keys("desk-a")) == 2 and len(fleet.keys("desk-b")) == 1
    assert "| `desk-a` | ✅ changes | 2 |" in md
    assert "- `desk-a` · **a1** · create" in md
    assert "[desk-a] == up started" in progress and "[desk-b] == up done" in progress

    # Changed: one stack has an edit waiting; the other has nothing to do, its key list only
    # reordered.
    fleet.stacks["desk-a"].set_keys([{"name": "a2", "symbol": "BTCUSDT"},
                                     {"name": "a1", "ipWhitelist": ["10.0.0.1"]}])
    fleet.stacks["desk-b"].set_keys([{"name": "b1", "keyType": "HMAC", "ipWhitelist": ["10.0.0.2"]}])
    code, summary, _, _ = fleet.runner("preview")
    assert code == 0
    assert {s: r["changes"] for s, r in rows(summary).items()} == {"desk-a": {}, "desk-b": {"update": 1}}
    code, summary, _, _ = fleet.runner("up", "--stacks", "desk-b")
    assert code == 0 and rows(summary)["desk-b"]["changes"] == {"update": 1}

    # Failing: one stack's config is malformed; the other still runs.
    fleet.stacks["desk-b"].set_keys([{"name": "b1", "keyType": "HMAC", "ipWhitelist": ["10.0.0.0/8"]}])
    code, summary, md, _ = fleet.runner("preview")
    assert code == 1
    assert not rows(summary)["desk-b"]["ok"] and "is a range" in rows(summary)["desk-b"]["error"]
    assert rows(summary)["desk-a"]["ok"] and rows(summary)["desk-a"]["changes"] == {}
    assert "❌ error" in md
    fleet.stacks["desk-b"].set_keys([{"name": "b1", "keyType": "HMAC", "ipWhitelist": ["10.0.0.2"]}])

    # Drifted: someone edits a key's IPs by hand. The drift check says so; a pull request's
    # preview shows what merging will do about it.
    a1 = next(k for k in fleet.keys("desk-a") if k["apiName"] == "a1")
    fleet.sandbox.script_client(fleet.accounts["desk-a"]).edit_ip(a1["apiKey"], None, ["192.0.2.1"])
    code, summary, md, _ = fleet.runner("drift")
    assert code == 2
    assert [s for s, r in rows(summary).items() if r["drifted"]] == ["desk-a"]
    assert "⚠️ drift" in md
    code, summary, _, _ = fleet.runner("preview", "--stacks", "desk-a")
    assert code == 0 and rows(summary)["desk-a"]["changes"] == {"update": 1}

    # A pull request naming a stack the backend does not have: an error, and no stack is made.
    ghost = fleet.directory / "stacks" / "Pulumi.ghost.yaml"
    ghost.write_text((fleet.directory / "stacks" / "Pulumi.desk-a.yaml").read_text())
    code, summary, _, _ = fleet.runner("preview", "--stacks", "ghost")
    assert code == 1 and "does not exist in the backend" in rows(summary)["ghost"]["error"]
    assert "ghost" not in fleet.stacks["desk-a"].run("stack", "ls").stdout
    ghost.unlink()
    assert fleet.runner("up", "--stacks", "desk-a")[0] == 0
    assert fleet.runner("drift", "--stacks", "desk-a")[0] == 0


def test_orphans_finds_a_key_made_by_hand_and_nothing_else(fleet: Fleet) -> None:
    assert fleet.runner("up")[0] == 0
    by_hand = fleet.sandbox.script_client(fleet.accounts["desk-b"]).create_special_key(
        "made-by-hand", "ETHUSDT", [], None, None)
    code, summary, md, _ = fleet.runner("orphans")
    assert code == 4  # keys no state holds, none of them this project's to delete
    assert {s: [o["apiKey"] for o in r["orphans"]] for s, r in rows(summary).items()} == {
        "desk-a": [], "desk-b": [by_hand.api_key]}
    assert rows(summary)["desk-b"]["orphans"][0]["scope"] == "ETHUSDT"
    assert rows(summary)["desk-b"]["orphans"][0]["verdict"] == "unmanaged"
    assert by_hand.api_key in md
    assert by_hand.secret_key is not None and by_hand.secret_key not in md + json.dumps(summary)


def test_exit_special_key_mode_is_deliberate_and_names_every_key_and_stack_it_breaks(fleet: Fleet) -> None:
    desk, other = fleet.stacks["desk-a"], fleet.stacks["desk-b"]
    shared = fleet.accounts["desk-a"]
    other.use_account(fleet.sandbox.base_url, shared)  # another desk on the same account
    fleet.accounts["desk-b"] = shared
    desk.set_keys([{"name": "a1"}, {"name": "a2", "symbol": "BTCUSDT"}])
    other.set_keys([{"name": "b1"}])
    assert fleet.runner("up")[0] == 0
    by_hand = fleet.sandbox.script_client(shared).create_special_key("by-hand", None, [], None, None)
    keys = {k["apiName"]: k["apiKey"] for k in fleet.keys("desk-a")}
    fleet.sandbox.reset_requests()
    # Without --yes and without a terminal to ask, nothing is sent; what would go is named.
    code, _, _, err = fleet.runner("exit-special-key-mode", "--stacks", "desk-a")
    assert code == 1 and "not confirmed" in err
    assert f"{keys['a1']} 'a1': stack 'desk-a'" in err and f"{keys['b1']} 'b1': stack 'desk-b'" in err
    assert f"{by_hand.api_key} 'by-hand': unmanaged" in err and "'a2'" not in err
    assert "stack(s) 'desk-a', 'desk-b' cannot create or rotate keys" in err
    assert fleet.sandbox.mutations() == []
    assert fleet.runner("exit-special-key-mode")[0] == 1  # one named stack only

    code, _, _, err = fleet.runner("exit-special-key-mode", "--stacks", "desk-a", "--yes")
    assert code == 0, err
    assert "can be created from about" in err
    assert [k["apiName"] for k in fleet.keys("desk-a")] == ["a2"]  # the isolated key stays
    assert [r["outputs"]["api_name"] for r in desk.resources()] == ["a2"]  # refreshed state
    # Creating during the 24-hour cooldown is refused. The sandbox is not Binance: its own words
    # (which say until when) never enter the message, only its code.
    failed = desk.up(check=False)
    assert failed.returncode != 0 and "code -3026" in failed.output
    assert "created again from" not in failed.output
    assert [k["apiName"] for k in fleet.keys("desk-a")] == ["a2"]


@pytest.mark.long
def test_a_fixed_config_takes_effect_without_any_other_step(fleet: Fleet) -> None:
    import socket

    desk = fleet.stacks["desk-a"]
    desk.set_keys([{"name": "a1", "ipWhitelist": ["10.0.0.1"]}])
    assert fleet.runner("up", "--stacks", "desk-a")[0] == 0
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        wrong = f"http://127.0.0.1:{closed.getsockname()[1]}"
    allow_endpoint(wrong)  # vouched for by the run, like any sandbox: it just does not answer
    desk.set_config("binance:baseUrl", wrong)
    desk.set_keys([{"name": "a1", "ipWhitelist": ["10.0.0.2"]}])
    failed = desk.up(check=False)  # stores the wrong provider settings with the failed update
    assert failed.returncode != 0 and "could not connect" in failed.output
    desk.set_config("binance:baseUrl", fleet.sandbox.base_url)  # the fix
    # The drift check (a refreshing preview) and the up (which refreshes first) both run with
    # the fixed settings, not the ones the failed update stored.
    code, summary, _, err = fleet.runner("drift", "--stacks", "desk-a")
    assert code == 2 and rows(summary)["desk-a"]["ok"], err
    assert fleet.runner("up", "--stacks", "desk-a")[0] == 0
    assert [k["ips"] for k in fleet.keys("desk-a")] == [["10.0.0.2"]]


def test_preflight_reads_each_stack_as_the_provider_does_and_writes_nothing(
    fleet: Fleet, tmp_path: Path,
) -> None:
    fleet.stacks["desk-a"].set_keys([{"name": "a1"}, {"name": "a2", "symbol": "BTCUSDT"}])
    fleet.stacks["desk-b"].set_keys([{"name": "b1", "symbol": "SOLUSDT"}])  # no such pair
    fleet.sandbox.reset_requests()
    code, summary, md, _ = fleet.runner("preflight", "--stacks", "desk-a,desk-b",
                                        "--record", str(tmp_path / "rec"))
    assert code == 1  # desk-b fails
    assert {row["status"] for row in summary["desk-a"]} == {"ok"}
    assert [row["check"] for row in summary["desk-b"] if row["status"] == "fail"] == ["pair SOLUSDT"]
    assert "### preflight: `desk-a`" in md and "❌ fail" in md
    made = [r["method"] for account in fleet.accounts.values()
            for r in fleet.sandbox.requests_log(account["accountId"])]
    assert made and set(made) == {"GET"}
    recorded = b"".join(p.read_bytes() for p in (tmp_path / "rec").rglob("*.json"))
    assert recorded and b"signature" not in recorded
    for account in fleet.accounts.values():
        assert account["apiKey"].encode() not in recorded
