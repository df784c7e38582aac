"""`kill -9` of a `gitops up` while it creates 20 keys on a shared backend, and the documented
recovery.

Recovery (docs/operations.md, "When a run is killed"):
    pulumi cancel --yes                           # the killed run's lock
    python -m margin_special_keys.gitops orphans --stacks S --delete --yes
                                                  # keys made but never recorded; reads the
                                                  # pending creates, so before the next line
    pulumi refresh --yes --clear-pending-creates --run-program
                                                  # forget creates that never reported back
    pulumi up --yes
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness import FULL_TABLES, ROOT, PulumiProject, SandboxAccount, SandboxProcess


def processes_in(directory: Path) -> dict[int, str]:
    """Processes whose working directory is `directory` or whose command line names it."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if cwd == str(directory) or str(directory) in cmdline:
            found[int(proc.name)] = cmdline
    return found


def wait_for_no_process(directory: Path, *markers: str, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(m in cmd for cmd in processes_in(directory).values() for m in markers):
            return True
        time.sleep(0.5)
    return False


def gitops(project: PulumiProject, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "margin_special_keys.gitops", *args, "--project", str(project.directory)],
        cwd=ROOT, env=project.env(), capture_output=True, text=True, timeout=300)


KEYS = [{"name": f"bot-{i:02d}", "keyType": "HMAC" if i % 3 == 0 else "ED25519",
         "ipWhitelist": ["10.0.0.1"]} for i in range(20)]


def agreement_of(project: PulumiProject, sandbox: SandboxProcess, account: SandboxAccount,
                 others: set[str]) -> dict[str, Any]:
    """The stack's keys on the exchange (the account's, less `others`: another stack's) against
    its state."""
    listed = [k for k in sandbox.special_keys(account["accountId"]) if k["apiKey"] not in others]
    on_exchange = sorted(k["apiKey"] for k in listed)
    in_state = sorted(r["id"] for r in project.resources())
    names = [k["apiName"] for k in listed]
    return {"exchange": len(on_exchange), "state": len(in_state), "agree": on_exchange == in_state,
            "duplicates": len(names) - len(set(names))}


# `make proof` kills at three moments, `make test` at one: once the exchange holds that many of
# the stack's keys. Creates act at once and answer 1.5 s later, so a kill finds keys on the
# exchange whose create never heard back: the orphans the recovery must find and delete.
@pytest.mark.long
@pytest.mark.parametrize("kill_at_keys", [1, 5, 12] if FULL_TABLES else [5])
def test_kill_during_a_gitops_up_on_a_shared_backend_then_recover(
        tmp_path: Path, pulumi_home: Path, clean_faults: SandboxProcess, postgres_backend: str,
        kill_at_keys: int, report: Callable[..., None]) -> None:
    sandbox = clean_faults
    account = sandbox.create_account("ED25519")
    project = PulumiProject.create(tmp_path / "project", pulumi_home, backend=postgres_backend)
    project.use_account(sandbox.base_url, account)
    other = project.other_stack("other-desk")  # another desk's stack on the same account
    other.use_account(sandbox.base_url, account)
    other.set_keys([{"name": "other-1"}, {"name": "other-2", "symbol": "BTCUSDT"}])
    other.up()
    theirs = {r["id"] for r in other.resources()}
    project.set_keys(KEYS)
    sandbox.add_fault(action="latency_after", method="POST", path="/sapi/v1/margin/apiKey",
                      delay_ms=1500)
    run = subprocess.Popen(
        [sys.executable, "-m", "margin_special_keys.gitops", "up", "--stacks", project.stack,
         "--project", str(project.directory)],
        cwd=ROOT, env=project.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    deadline = time.monotonic() + 120
    while len(sandbox.special_keys(account["accountId"])) - len(theirs) < kill_at_keys:
        assert run.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)  # the runner, the engine, its language host, the provider
    run.wait()
    time.sleep(0.5)  # requests already on the wire land
    sandbox.clear_faults()
    at_kill = agreement_of(project, sandbox, account, theirs)

    # The killed run's lock stays: the audit refuses to delete, saying it is a killed run's.
    refused = gitops(project, "orphans", "--stacks", project.stack, "--delete", "--yes")
    assert "a killed run's lock" in refused.stderr and "pulumi cancel" in refused.stderr
    assert not [r for r in sandbox.requests_log(account["accountId"]) if r["method"] == "DELETE"]

    # The documented recovery (docs/operations.md), in its order.
    project.run("cancel", "--yes")
    audit = gitops(project, "orphans", "--stacks", project.stack, "--delete", "--yes")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert wait_for_no_process(project.directory, "pulumi.dynamic", "pulumi-language-python",
                               "language_host.py", timeout=5)
    orphans_deleted = audit.stdout.count("— deleted")
    assert "unmanaged" not in audit.stdout and "unproven" not in audit.stdout
    project.refresh("--clear-pending-creates", "--run-program")
    project.up()

    after = agreement_of(project, sandbox, account, theirs)
    assert after == {"exchange": 20, "state": 20, "agree": True, "duplicates": 0}
    assert {r["id"] for r in other.resources()} == theirs  # the other desk's keys, untouched
    assert theirs <= {k["apiKey"] for k in sandbox.special_keys(account["accountId"])}
    other.expect_no_changes()
    report("kill", kill_at_keys=kill_at_keys, exchange_at_kill=at_kill["exchange"],
           state_at_kill=at_kill["state"], orphans_deleted=orphans_deleted, **after)


def test_an_empty_checkpoint_attrs_file_is_named_with_the_command_that_fixes_it(
        project: PulumiProject) -> None:
    """A `kill -9` during a file backend's checkpoint write can leave `<stack>.json.attrs` empty
    (about 1 kill in 17), and every command then fails with `failed to load checkpoint: EOF`."""
    [attrs] = (project.directory / "state").glob(f"**/{project.stack}.json.attrs")
    attrs.write_bytes(b"")
    stuck = gitops(project, "orphans", "--stacks", project.stack)
    assert stuck.returncode == 1 and f"`rm {attrs}`" in stuck.stdout + stuck.stderr


def keys_of(project: PulumiProject) -> set[str]:
    """Every key the stack's state holds: each resource's current key and, during an overlap
    window, its previous one."""
    return {k for r in project.resources()
            for k in (r["outputs"].get("api_key"), r["outputs"].get("previous_api_key")) if k}


def kill_when(run: subprocess.Popen[bytes], done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 120
    while not done():
        assert run.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    time.sleep(0.5)  # requests already on the wire land


@pytest.mark.long
def test_kill_during_a_rotation_and_during_a_retirement_under_a_window_then_recover(
        tmp_path: Path, pulumi_home: Path, clean_faults: SandboxProcess) -> None:
    """A rotation under an overlap window makes its new key in an update: killed after the
    exchange made some, the recovery deletes exactly those (proved by the pending update), and
    the next up leaves each key with one current key plus its previous one. Killed while it
    retires, the next run finishes the retirement."""
    sandbox = clean_faults
    account = sandbox.create_account("ED25519")
    project = PulumiProject.create(tmp_path / "project", pulumi_home)
    project.use_account(sandbox.base_url, account)
    keys = [{"name": f"bot-{i}", "keyType": "HMAC" if i == 0 else "ED25519", "overlapHours": 24,
             "ipWhitelist": ["10.0.0.1"], "keepers": {"v": "1"}} for i in range(4)]
    project.set_keys(keys)
    project.up()
    project.set_keys([{**k, "keepers": {"v": "2"}} for k in keys])

    def listed() -> set[str]:
        return {k["apiKey"] for k in sandbox.special_keys(account["accountId"])}

    sandbox.add_fault(action="latency_after", method="POST", path="/sapi/v1/margin/apiKey",
                      delay_ms=1500)
    run = subprocess.Popen(
        [sys.executable, "-m", "margin_special_keys.gitops", "up", "--stacks", project.stack,
         "--project", str(project.directory)],
        cwd=ROOT, env=project.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    kill_when(run, lambda: len(listed()) >= 6)  # two rotations made their key, unanswered
    sandbox.clear_faults()
    assert listed() - keys_of(project)  # keys on the exchange that no state holds

    project.run("cancel", "--yes")
    audit = gitops(project, "orphans", "--stacks", project.stack, "--delete", "--yes")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "unmanaged" not in audit.stdout and "unproven" not in audit.stdout
    assert audit.stdout.count("— deleted") >= 2
    assert listed() == keys_of(project)
    project.refresh("--clear-pending-creates", "--run-program")
    project.up()
    state = project.resources()
    assert all(r["outputs"].get("previous_api_key") for r in state)  # each: current + previous
    assert listed() == keys_of(project) and len(listed()) == 8
    project.expect_no_changes()

    # The windows end; the retirement is killed after some deletes landed.
    exported = project.export()
    for resource in exported["deployment"]["resources"]:
        if resource["type"].endswith("MarginSpecialKey"):
            resource["outputs"]["created_at_ms"] -= 25 * 3600 * 1000
    (project.directory / "later.json").write_text(__import__("json").dumps(exported))
    project.run("stack", "import", "--file", "later.json")
    sandbox.add_fault(action="latency_after", method="DELETE", path="/sapi/v1/margin/apiKey",
                      delay_ms=1500)
    run = subprocess.Popen(
        [sys.executable, "-m", "margin_special_keys.gitops", "rotate", "--stacks", project.stack,
         "--project", str(project.directory)],
        cwd=ROOT, env=project.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    kill_when(run, lambda: len(listed()) <= 6)
    sandbox.clear_faults()
    project.run("cancel", "--yes")
    rotated = gitops(project, "rotate", "--stacks", project.stack)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert listed() == keys_of(project) and len(listed()) == 4
    assert not any(r["outputs"].get("previous_api_key") for r in project.resources())
    project.expect_no_changes()
