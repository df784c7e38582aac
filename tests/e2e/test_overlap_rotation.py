"""Rotation with an overlap window on the real engine: the new key now, the old one usable through
its window (both sign requests the exchange accepts), read by a trading system's own project
through a StackReference, and by a trading host from its sealed file with its own age identity
only; the scheduled job refuses what nobody scheduled, and after the window it retires the old
key by itself."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from margin_special_keys.binance.client import BinanceClient
from margin_special_keys.binance.signing import PrivateKeySigner
from margin_special_keys.errors import MarginSpecialKeysError
from tests.harness import ROOT, PulumiProject, SandboxAccount, SandboxProcess

LISTED = "203.0.113.10"
KEY = "/sapi/v1/margin/apiKey"
TRADER = """\
import pulumi

desk = pulumi.StackReference("organization/margin-special-keys/test")
credentials = desk.get_output("credentials-bot")
pulumi.export("apiKey", credentials.apply(lambda c: c["apiKey"]))
pulumi.export("privateKey", credentials.apply(lambda c: c["privateKey"]))
pulumi.export("previous", credentials.apply(lambda c: c.get("previous")))
"""


def gitops(project: PulumiProject, *args: str) -> tuple[int, str]:
    summary = project.directory / "summary.md"
    summary.unlink(missing_ok=True)
    run = subprocess.run(
        [sys.executable, "-m", "margin_special_keys.gitops", *args, "--project",
         str(project.directory), "--markdown", str(summary)],
        cwd=ROOT, env=project.env(), capture_output=True, text=True, timeout=300)
    return run.returncode, summary.read_text() if summary.exists() else run.stderr


def keygen(path: Path) -> str:
    run = subprocess.run([sys.executable, "-m", "margin_special_keys.credentials", "keygen", "-o",
                          str(path)], capture_output=True, text=True, check=True)
    return run.stderr.split("Public key: ", 1)[1].strip()


def sealed_open(path: Path, identity: Path) -> subprocess.CompletedProcess[str]:
    """What a trading host runs: its sealed file and its own identity, no backend, no passphrase."""
    return subprocess.run([sys.executable, "-m", "margin_special_keys.credentials", "open", str(path),
                           "--identity", str(identity)], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})


def signs(sandbox: SandboxProcess, api_key: str, private_key: str) -> bool:
    try:
        BinanceClient(sandbox.base_url, api_key, PrivateKeySigner(private_key)).account_uid()
    except MarginSpecialKeysError:
        return False
    return True


def hours_pass(project: PulumiProject, hours: float) -> None:
    """As far as the state knows, the last rotation happened `hours` earlier."""
    state = project.export()
    for resource in state["deployment"]["resources"]:
        if resource["type"].endswith("MarginSpecialKey"):
            resource["outputs"]["created_at_ms"] -= hours * 3600 * 1000
    (project.directory / "later.json").write_text(json.dumps(state))
    project.run("stack", "import", "--file", "later.json")


def test_the_old_key_works_through_its_window_and_retires_by_itself(
    project: PulumiProject, sandbox: SandboxProcess, account: SandboxAccount, tmp_path: Path,
    pulumi_home: Path,
) -> None:
    trader, risk = tmp_path / "trader.key", tmp_path / "risk.key"
    bot: dict[str, Any] = {"name": "bot", "ipWhitelist": [LISTED], "overlapHours": 24,
                           "keepers": {"v": "1"}, "deliverTo": [keygen(trader)]}
    hedge: dict[str, Any] = {"name": "hedge", "ipWhitelist": [LISTED], "deliverTo": [keygen(risk)]}
    project.set_keys([bot, hedge])
    project.up()
    first = project.outputs(show_secrets=True)["credentials-bot"]

    # A rotation: an update in place, said as such to the reviewer.
    project.set_keys([{**bot, "keepers": {"v": "2"}}, hedge])
    assert project.planned_ops()["bot"] == ["update"]
    code, summary = gitops(project, "preview")
    assert code == 0, summary
    assert "**bot** · rotate because of keepers — new key now; the old key stays usable until" in summary
    assert " UTC, then the next run retires it" in summary
    # The scheduled job does not apply a change someone declared: it stops and says so.
    sandbox.reset_requests()
    code, summary = gitops(project, "rotate")
    assert code == 1 and "not applied\\: the preview holds changes that time did not make due" in summary
    assert sandbox.mutations() == []

    delivered = tmp_path / "delivered"
    code, summary = gitops(project, "up", "--deliver", str(delivered))
    assert code == 0, summary
    credentials = project.outputs(show_secrets=True)["credentials-bot"]
    # The trading host reads its key, and through the window the previous one, from its sealed
    # file with its own identity; another desk's file, or the state, gives it nothing.
    assert sorted(p.name for p in (delivered / "test").iterdir()) == ["bot.age", "hedge.age"]
    opened = sealed_open(delivered / "test" / "bot.age", trader)
    assert opened.returncode == 0, opened.stderr
    sealed = json.loads(opened.stdout)
    assert (sealed["apiKey"], sealed["privateKey"]) == (credentials["apiKey"], credentials["privateKey"])
    assert sealed["previous"]["apiKey"] == first["apiKey"]
    assert sealed["previous"]["privateKey"] == first["privateKey"]
    refused = sealed_open(delivered / "test" / "hedge.age", trader)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("error: ") and len(refused.stderr.splitlines()) == 1
    state_file = next((project.directory / "state").rglob("test.json"))
    assert credentials["privateKey"].splitlines()[1] not in state_file.read_text()
    previous = credentials["previous"]
    assert previous["apiKey"] == first["apiKey"] and credentials["apiKey"] != first["apiKey"]
    assert previous["privateKey"] == first["privateKey"]
    retires_at = previous["retiresAtMs"]
    assert abs(retires_at - (time.time() + 24 * 3600) * 1000) < 600_000
    assert previous["retiresAt"].endswith(" UTC")
    listed = {k["apiKey"] for k in sandbox.special_keys(account["accountId"])}
    assert {credentials["apiKey"], first["apiKey"]} <= listed and len(listed) == 3
    sandbox.set_caller_address(account["accountId"], LISTED)
    try:
        assert signs(sandbox, credentials["apiKey"], credentials["privateKey"])
        assert signs(sandbox, previous["apiKey"], previous["privateKey"])
        project.expect_no_changes()

        # The trading system's own project reads the key through a StackReference.
        trading = PulumiProject.create(tmp_path / "trading", pulumi_home, program=TRADER,
                                      stack="desk", name="trader",
                                      backend=f"file://{project.directory / 'state'}")
        trading.up()
        read = trading.outputs(show_secrets=True)
        assert read["apiKey"] == credentials["apiKey"] and read["previous"]["apiKey"] == first["apiKey"]

        # Within the window the nightly run has nothing to report, and the scheduled job nothing to do.
        hours_pass(project, 23)
        assert gitops(project, "drift")[0] == 0
        sandbox.reset_requests()
        assert gitops(project, "rotate")[0] == 0 and sandbox.mutations() == []

        # After it: the nightly run names the retirement (not drift), the scheduled job does it.
        hours_pass(project, 2)
        code, summary = gitops(project, "drift")
        assert code == 0 and "**bot** · retire the previous key (its window ended" in summary
        code, summary = gitops(project, "rotate", "--deliver", str(delivered))
        assert code == 0 and "| `test` | ✅ changes | 0 | 1 | 0 | 0 |" in summary, summary
        assert sandbox.mutations() == [("DELETE", KEY)]
        reopened = sealed_open(delivered / "test" / "bot.age", trader)
        assert reopened.returncode == 0, reopened.stderr + summary
        resealed = json.loads(reopened.stdout)
        assert resealed["apiKey"] == credentials["apiKey"] and "previous" not in resealed
        assert credentials["apiKey"] in {k["apiKey"] for k in sandbox.special_keys(account["accountId"])}
        assert previous["apiKey"] not in {k["apiKey"] for k in sandbox.special_keys(account["accountId"])}
        assert not signs(sandbox, previous["apiKey"], previous["privateKey"])
        assert signs(sandbox, credentials["apiKey"], credentials["privateKey"])
        after = project.outputs(show_secrets=True)["credentials-bot"]
        assert after == {"apiKey": credentials["apiKey"], "privateKey": credentials["privateKey"]}
        project.expect_no_changes()
    finally:
        sandbox.set_caller_address(account["accountId"], None)

    # A destroy in a window deletes both keys.
    project.set_keys([{**bot, "keepers": {"v": "3"}}, hedge])
    project.up()
    assert len(sandbox.special_keys(account["accountId"])) == 3
    project.destroy()
    assert sandbox.special_keys(account["accountId"]) == []
