"""`kill -9` of `pulumi up` while it creates 20 keys, and the documented recovery.

Recovery (README, "When a run is killed"):
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

import pytest

from tests.harness import FULL_TABLES, ROOT, PulumiProject, SandboxAccount, SandboxProcess
from tests.proof.conftest import agreement


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


def audit_orphans(project: PulumiProject) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "margin_special_keys.gitops",
         "orphans", "--stacks", project.stack, "--delete", "--yes",
         "--project", str(project.directory)],
        cwd=ROOT, env=project.env(), capture_output=True, text=True, timeout=300)


KEYS = [{"name": f"bot-{i:02d}", "keyType": "HMAC" if i % 3 == 0 else "ED25519",
         "ipWhitelist": ["10.0.0.1"]} for i in range(20)]


# `make proof` kills at four moments; `make test` at one, 2.0 s, where an empty checkpoint .attrs
# file can be left (the test forces it). Which moment finds creates in flight depends on how fast
# the machine starts the run: docs/reliability.md has what each moment found last (at one run,
# 2.0 s: 4 keys on the exchange and none in the state; at the next, 3.5 s found that). Orphans
# deleted by the audit are also proven in tests/e2e/test_gitops.py (a key a killed up leaves).
@pytest.mark.long
@pytest.mark.parametrize("kill_after_s", [0.8, 1.4, 2.0, 3.5] if FULL_TABLES else [2.0])
def test_kill_during_up_then_recover(project: PulumiProject, clean_faults: SandboxProcess,
                                     account: SandboxAccount, kill_after_s: float,
                                     report: Callable[..., None]) -> None:
    sandbox = clean_faults
    project.set_keys(KEYS)
    # Slow creates, so the kill lands while some are in flight.
    sandbox.add_fault(action="latency", method="POST", path="/sapi/v1/margin/apiKey", delay_ms=400)
    run = subprocess.Popen(
        ["pulumi", "up", "--yes", "--skip-preview", "--stack", project.stack, "--non-interactive"],
        cwd=project.directory, env=project.env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(kill_after_s)
    os.killpg(run.pid, signal.SIGKILL)  # the engine, its language host and the provider
    run.wait()
    time.sleep(0.5)  # requests already on the wire land
    sandbox.clear_faults()
    at_kill = agreement(project, sandbox, account)
    # Pulumi's dynamic provider process (`python -m pulumi.dynamic`) outlives the killed engine,
    # and Pulumi's Go language host too, for up to five minutes: the runner's next run in the
    # project (the audit below) ends what is left.

    project.run("cancel", "--yes")
    if kill_after_s == 2.0:
        # About 1 kill in 17 leaves the checkpoint's .attrs file empty, and every command then
        # fails with `failed to load checkpoint: EOF`: the runner says exactly what to do.
        [attrs] = (project.directory / "state").glob(f"**/{project.stack}.json.attrs")
        attrs.write_bytes(b"")
        stuck = audit_orphans(project)
        assert stuck.returncode == 1 and f"`rm {attrs}`" in stuck.stdout + stuck.stderr
        attrs.unlink()
    audit = audit_orphans(project)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert wait_for_no_process(project.directory, "pulumi.dynamic", "pulumi-language-python",
                               "language_host.py", timeout=5)
    orphans_deleted = audit.stdout.count("— deleted")
    assert "unmanaged" not in audit.stdout
    project.refresh("--clear-pending-creates", "--run-program")
    project.up()

    after = agreement(project, sandbox, account)
    assert after == {"exchange": 20, "state": 20, "agree": True, "duplicates": 0}
    report("kill", kill_after_s=kill_after_s, exchange_at_kill=at_kill["exchange"],
           state_at_kill=at_kill["state"], orphans_deleted=orphans_deleted, **after)
