"""The GitOps runner over several stacks, one per sandbox account, on the real engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ROOT, PulumiProject, SandboxAccount, SandboxProcess


class Fleet:
    def __init__(self, tmp_path: Path, home: Path, sandbox: SandboxProcess) -> None:
        self.sandbox = sandbox
        first = PulumiProject.create(tmp_path / "infra", home, stack="desk-a")
        self.stacks = {"desk-a": first, "desk-b": first.other_stack("desk-b"),
                       "desk-c": first.other_stack("desk-c")}
        self.accounts: dict[str, SandboxAccount] = {}
        for name, stack in self.stacks.items():
            self.accounts[name] = sandbox.create_account("ED25519")
            stack.use_account(sandbox.base_url, self.accounts[name])
        self.directory = first.directory

    def runner(self, *args: str) -> tuple[int, dict[str, Any], str, str]:
        out_json = self.directory / "summary.json"
        out_md = self.directory / "summary.md"
        proc = subprocess.run(
            [sys.executable, "-m", "gitops", *args, "--project", str(self.directory),
             "--json", str(out_json), "--markdown", str(out_md), "--parallel", "3"],
            cwd=ROOT, env=self.stacks["desk-a"].env(), capture_output=True, text=True, timeout=600)
        summary = json.loads(out_json.read_text()) if out_json.exists() else {}
        return proc.returncode, summary, out_md.read_text() if out_md.exists() else "", proc.stderr

    def keys(self, stack: str) -> list[dict[str, Any]]:
        return self.sandbox.special_keys(self.accounts[stack]["accountId"])


def rows(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["stack"]: r for r in summary["stacks"]}


@pytest.fixture
def fleet(tmp_path: Path, pulumi_home: Path, sandbox: SandboxProcess) -> Fleet:
    fleet = Fleet(tmp_path, pulumi_home, sandbox)
    fleet.stacks["desk-a"].set_keys([{"name": "a1", "ipWhitelist": ["10.0.0.1"]},
                                     {"name": "a2", "symbol": "BTCUSDT"}])
    fleet.stacks["desk-b"].set_keys([{"name": "b1", "keyType": "HMAC"}])
    fleet.stacks["desk-c"].set_keys([{"name": "c1", "keyType": "RSA", "ipWhitelist": ["10.0.0.3"]}])
    return fleet


def test_runner_applies_previews_and_reports_every_stack(fleet: Fleet) -> None:
    code, summary, md, progress = fleet.runner("up")
    assert code == 0, progress
    assert {s: r["changes"].get("create") for s, r in rows(summary).items()} == {
        "desk-a": 3, "desk-b": 2, "desk-c": 2}  # keys plus each stack's own resource
    assert len(fleet.keys("desk-a")) == 2 and len(fleet.keys("desk-b")) == 1
    assert "| `desk-a` | ✅ changes | 3 |" in md
    assert "[desk-b] == up started" in progress and "[desk-c] == up done" in progress

    # Clean: nothing to do, nothing differs.
    code, summary, md, _ = fleet.runner("preview")
    assert code == 0 and all(not r["changes"] for r in summary["stacks"])
    assert fleet.runner("drift")[0] == 0

    # Changed: one stack has an edit waiting.
    fleet.stacks["desk-b"].set_keys([{"name": "b1", "keyType": "HMAC", "ipWhitelist": ["10.0.0.2"]}])
    code, summary, _, _ = fleet.runner("preview")
    assert code == 0
    assert rows(summary)["desk-b"]["changes"] == {"update": 1}
    assert rows(summary)["desk-a"]["changes"] == {}
    assert fleet.runner("up")[0] == 0

    # Failing: one stack's config is malformed; the others still run.
    fleet.stacks["desk-c"].set_keys([{"name": "c1", "keyType": "RSA", "ipWhitelist": ["10.0.0.0/8"]}])
    code, summary, md, _ = fleet.runner("preview")
    assert code == 1
    assert not rows(summary)["desk-c"]["ok"] and "is a range" in rows(summary)["desk-c"]["error"]
    assert rows(summary)["desk-a"]["ok"] and rows(summary)["desk-b"]["ok"]
    assert "❌ error" in md
    fleet.stacks["desk-c"].set_keys([{"name": "c1", "keyType": "RSA", "ipWhitelist": ["10.0.0.3"]}])

    # Drifted: someone edits a key's IPs by hand.
    a1 = next(k for k in fleet.keys("desk-a") if k["apiName"] == "a1")
    fleet.sandbox.script_client(fleet.accounts["desk-a"]).edit_ip(a1["apiKey"], None, ["192.0.2.1"])
    code, summary, md, _ = fleet.runner("drift")
    assert code == 2
    assert [s for s, r in rows(summary).items() if r["drifted"]] == ["desk-a"]
    assert "⚠️ drift" in md
    assert fleet.runner("up", "--stacks", "desk-a")[0] == 0
    assert fleet.runner("drift")[0] == 0


def test_reordering_a_stacks_key_list_changes_nothing(fleet: Fleet) -> None:
    assert fleet.runner("up", "--stacks", "desk-a")[0] == 0
    fleet.stacks["desk-a"].set_keys([{"name": "a2", "symbol": "BTCUSDT"},
                                     {"name": "a1", "ipWhitelist": ["10.0.0.1"]}])
    fleet.stacks["desk-a"].expect_no_changes()


def test_orphans_finds_a_key_made_by_hand_and_nothing_else(fleet: Fleet) -> None:
    assert fleet.runner("up")[0] == 0
    code, summary, _, _ = fleet.runner("orphans")
    assert code == 0 and all(r["orphans"] == [] for r in summary["stacks"])

    by_hand = fleet.sandbox.script_client(fleet.accounts["desk-b"]).create_special_key(
        "made-by-hand", "ETHUSDT", [], None, None)
    code, summary, md, _ = fleet.runner("orphans")
    assert code == 3
    assert {s: [o["apiKey"] for o in r["orphans"]] for s, r in rows(summary).items()} == {
        "desk-a": [], "desk-b": [by_hand.api_key], "desk-c": []}
    assert rows(summary)["desk-b"]["orphans"][0]["scope"] == "ETHUSDT"
    assert by_hand.api_key in md
    assert by_hand.secret_key is not None and by_hand.secret_key not in md + json.dumps(summary)
