"""Day two reads true: a refresh shows nothing for a key that did not change, and the nightly drift
check names exactly what changed on the exchange."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.fleet import Fleet, rows
from tests.harness import PulumiProject, SandboxProcess

# Every key type, every default left to the provider, and values written loosely.
EVERY_KIND: list[dict[str, Any]] = [
    {"name": "cross-ed25519", "ipWhitelist": ["203.0.113.11", "203.0.113.10", "203.0.113.10"]},
    {"name": "btcusdt-rsa", "keyType": "rsa", "symbol": "btcusdt", "ipWhitelist": ["203.0.113.10"]},
    {"name": "rsa-4096", "keyType": "RSA", "rsaBits": 4096, "ipWhitelist": ["203.0.113.10"]},
    {"name": "ethusdt-hmac", "keyType": "HMAC", "symbol": "ETHUSDT", "ipWhitelist": ["203.0.113.12"]},
    {"name": "reader", "permissionMode": "read", "keepers": {"round": 7},
     "ipWhitelist": ["2001:db8::10", "203.0.113.13"]},
]


def refresh_with_events(project: PulumiProject) -> tuple[str, list[dict[str, Any]]]:
    """`pulumi refresh --run-program` as a person runs it, with the engine's event log."""
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "events.jsonl"
        project.extra_env["PULUMI_DEBUG_COMMANDS"] = "true"  # enables --event-log
        try:
            run = project.run("refresh", "--yes", "--run-program", "--event-log", str(log))
        finally:
            project.extra_env.pop("PULUMI_DEBUG_COMMANDS")
        events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return run.output, events


def key_diffs(events: list[dict[str, Any]]) -> list[Any]:
    """Every diff the engine reports for a special key, in either kind of step event."""
    found = []
    for event in events:
        for kind in ("resourcePreEvent", "resOutputsEvent"):
            meta = (event.get(kind) or {}).get("metadata") or {}
            if str(meta.get("type", "")).endswith("MarginSpecialKey"):
                found += [d for d in (meta.get("diffs"), meta.get("detailedDiff")) if d]
    return found


def test_a_refresh_of_every_key_type_and_every_listing_shape_shows_no_change(
    project: PulumiProject, sandbox: SandboxProcess,
) -> None:
    project.set_keys(EVERY_KIND)
    project.up()
    try:
        for dialect in ({}, {"ip-listing": "plain", "type-spelling": "lower"},
                        {"type-spelling": "upper"}):
            sandbox.set_dialect(**dialect)
            output, events = refresh_with_events(project)
            assert "[diff:" not in output, (dialect, output)
            assert key_diffs(events) == [], dialect
            assert "5 unchanged" in output or "6 unchanged" in output
    finally:
        sandbox.set_dialect()
    project.expect_no_changes()


@pytest.fixture
def fleet(tmp_path: Path, pulumi_home: Path, sandbox: SandboxProcess) -> Fleet:
    return Fleet(tmp_path, pulumi_home, sandbox, 1)


def test_the_drift_check_names_what_changed_on_the_exchange(fleet: Fleet) -> None:
    desk, sandbox = fleet.stacks["desk-a"], fleet.sandbox
    desk.set_keys([{"name": "trader", "ipWhitelist": ["198.51.100.7", "198.51.100.8"]},
                   {"name": "reader", "ipWhitelist": ["198.51.100.7"]},
                   {"name": "gone", "symbol": "BTCUSDT", "ipWhitelist": ["198.51.100.7"]},
                   {"name": "steady", "ipWhitelist": ["198.51.100.9"]}])
    assert fleet.runner("up", "--stacks", "desk-a")[0] == 0
    held = {k["apiName"]: k["apiKey"] for k in fleet.keys("desk-a")}
    script = sandbox.script_client(fleet.accounts["desk-a"])
    # By hand on the exchange: an address added (one declared removed), a mode changed, a key deleted.
    script.edit_ip(held["trader"], None, ["198.51.100.7", "203.0.113.66"])
    sandbox.set_key_permission_mode(held["reader"], "READ")
    script.delete_special_key(held["gone"], "BTCUSDT")

    code, summary, md, _ = fleet.runner("drift", "--stacks", "desk-a")
    assert code == 2
    steps = {s["key"]: s for s in rows(summary)["desk-a"]["steps"]}
    assert set(steps) == {"trader", "reader", "gone"}  # nothing for the key that did not change
    trader = steps["trader"]
    assert (trader["ipsOnlyOnBinance"], trader["ipsOnlyDeclared"]) == (["203.0.113.66"], ["198.51.100.8"])
    assert ("- `desk-a` · **trader** · update (ipWhitelist): on Binance, not declared: 203.0.113.66;"
            " declared, not on Binance: 198.51.100.8") in md
    reader = steps["reader"]
    assert (reader["binance"], reader["declared"]) == ({"permissionMode": "READ"},
                                                       {"permissionMode": "TRADE"})
    assert "**reader** · replace because of permissionMode: Binance READ, declared TRADE" in md
    assert steps["gone"]["gone"] is True
    assert "**gone** · gone from Binance: the next up makes a new key" in md
    assert "steady" not in md
