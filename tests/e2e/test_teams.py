"""Teams: several stacks on one firm account, pipelines that run at once, a shared state backend.

The shared-backend scenarios run on Pulumi's `postgres://` backend against the PostgreSQL server
the suite starts (tests/conftest.py), each on a table of its own.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.fleet import Fleet, rows
from tests.harness import TEST_IPS, PulumiProject, SandboxProcess

CREATE = "/sapi/v1/margin/apiKey"


def deletes(sandbox: SandboxProcess) -> list[tuple[str, str]]:
    return [m for m in sandbox.mutations() if m[0] == "DELETE"]


def on_exchange(fleet: Fleet, stack: str) -> dict[str, str]:
    """apiName -> apiKey of the keys on the stack's account."""
    return {k["apiName"]: k["apiKey"] for k in fleet.keys(stack)}


def in_state(project: PulumiProject) -> dict[str, str]:
    return {r["outputs"]["api_name"]: r["id"] for r in project.resources()}


@pytest.mark.long
def test_a_run_meeting_a_running_up_reads_busy_and_the_audit_deletes_nothing_it_creates(
    tmp_path: Path, pulumi_home: Path, clean_faults: SandboxProcess, postgres_backend: str,
) -> None:
    sandbox = clean_faults
    fleet = Fleet(tmp_path, pulumi_home, sandbox, 2, backend=postgres_backend, shared_account=True)
    desk_a, desk_b = fleet.stacks["desk-a"], fleet.stacks["desk-b"]
    desk_a.set_keys([{"name": "a1"}, {"name": "a2", "symbol": "BTCUSDT"}])
    desk_b.set_keys([{"name": "b1"}])
    code, _, _, err = fleet.runner("up")
    assert code == 0, err
    assert fleet.runner("drift")[0] == 0
    b1 = on_exchange(fleet, "desk-b")["b1"]

    # One pipeline's up creates a3: the key is made on the exchange, its answer still on its way.
    desk_a.set_keys([{"name": "a1"}, {"name": "a2", "symbol": "BTCUSDT"}, {"name": "a3"}])
    sandbox.add_fault(action="latency_after", method="POST", path=CREATE, delay_ms=40000, count=1)
    merge = fleet.start_runner("up", "--stacks", "desk-a")
    try:
        deadline = time.monotonic() + 60
        while "a3" not in on_exchange(fleet, "desk-a"):
            assert merge.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        sandbox.reset_requests()

        # The documented recovery step, run meanwhile: the stack is locked, so the audit reads busy
        # and calls nothing an orphan (the key in flight is the run's pending create); from the
        # other stack on the account too. Naming the key by hand is refused the same way.
        for stack in ("desk-a", "desk-b"):
            code, summary, md, err = fleet.runner("orphans", "--stacks", stack, "--delete", "--yes")
            busy = rows(summary)[stack]["busy"] or ""
            assert code == 5 and rows(summary)[stack]["orphans"] == [], err
            assert busy.startswith("stack 'desk-a' is locked by another run: ") and " (pid " in busy
        code, _, _, err = fleet.runner("delete-key", "--stacks", "desk-b", "--api-key",
                                       on_exchange(fleet, "desk-a")["a3"], "--yes")
        assert code == 5 and "not deleted: stack 'desk-a' is locked by another run" in err
        assert deletes(sandbox) == []

        # Every other runner operation on the stack reads busy, in one line, and runs nothing.
        for operation in ("up", "refresh", "drift", "preview"):
            code, summary, md, err = fleet.runner(operation, "--stacks", "desk-a")
            busy = rows(summary)["desk-a"]["busy"] or ""
            assert code == 5 and rows(summary)["desk-a"]["ok"], (operation, err)
            assert busy.startswith("stack 'desk-a' is locked by another run: ") and "\n" not in busy
            assert "⏳ busy" in md and not rows(summary)["desk-a"]["drifted"]
        # A pull request's preview may wait for the merge's up instead.
        code, summary, _, err = fleet.runner("preview", "--stacks", "desk-a", "--lock-timeout", "60")
        assert code == 0 and rows(summary)["desk-a"]["changes"] == {}, err
        assert merge.wait(timeout=120) == 0
    finally:
        if merge.poll() is None:
            merge.kill()
        sandbox.clear_faults()

    # The up recorded the key that exists; nothing of the other stack was touched.
    assert in_state(desk_a) == {k: v for k, v in on_exchange(fleet, "desk-a").items() if k != "b1"}
    a3 = desk_a.outputs(show_secrets=True)["credentials-a3"]["apiKey"]
    assert a3 == on_exchange(fleet, "desk-a")["a3"]
    assert in_state(desk_b) == {"b1": b1} and deletes(sandbox) == []
    code, summary, _, _ = fleet.runner("drift")
    assert code == 0 and not any(r["drifted"] for r in summary["stacks"])


def test_an_audit_never_deletes_a_hand_made_key_or_another_desks_declared_by_mistake(
    tmp_path: Path, pulumi_home: Path, sandbox: SandboxProcess,
) -> None:
    fleet = Fleet(tmp_path, pulumi_home, sandbox, 2, shared_account=True)
    desk_a, desk_b = fleet.stacks["desk-a"], fleet.stacks["desk-b"]
    shared = fleet.accounts["desk-a"]
    # Stack b names the same exchange with another spelling of its host.
    desk_b.set_config("binance:baseUrl", sandbox.base_url.replace("127.0.0.1", "localhost"))
    desk_b.set_keys([{"name": "trader"}])
    assert fleet.runner("up", "--stacks", "desk-b")[0] == 0
    by_hand = sandbox.script_client(shared).create_special_key("cross-1", None, TEST_IPS, None, None)
    trader = on_exchange(fleet, "desk-a")["trader"]

    # An ordinary merged mistake: stack a declares both. Its up is refused for the names.
    desk_a.set_keys([{"name": "cross-1"}, {"name": "trader"}])
    code, summary, _, _ = fleet.runner("up", "--stacks", "desk-a")
    assert code == 1 and "already exists" in rows(summary)["desk-a"]["error"]

    sandbox.reset_requests()
    code, summary, md, err = fleet.runner("orphans", "--stacks", "desk-a", "--delete", "--yes")
    found = {o["apiKey"]: o["verdict"] for o in rows(summary)["desk-a"]["orphans"]}
    # trader is stack b's (the same account by uid): not listed; cross-1 is nobody's to delete.
    assert found == {by_hand.api_key: "unmanaged"} and code == 4, err
    assert deletes(sandbox) == []
    assert on_exchange(fleet, "desk-a") == {"cross-1": by_hand.api_key, "trader": trader}
    desk_b.expect_no_changes()

    # Who wants the hand-made key gone names it, sees it, and confirms.
    code, _, _, err = fleet.runner("delete-key", "--stacks", "desk-a", "--api-key", trader, "--yes")
    assert code == 1 and "stack 'desk-b' manages" in err and deletes(sandbox) == []
    code, _, _, err = fleet.runner("delete-key", "--stacks", "desk-a", "--api-key", by_hand.api_key)
    assert code == 1 and "'cross-1' on cross margin" in err and "unmanaged" in err
    assert "not confirmed" in err and deletes(sandbox) == []
    code, _, _, err = fleet.runner("delete-key", "--stacks", "desk-a", "--api-key", by_hand.api_key,
                                   "--yes")
    assert code == 0, err
    assert on_exchange(fleet, "desk-a") == {"trader": trader}
