"""Concurrent runs on Pulumi's shared `postgres://` backend: its lock on one stack, and many stacks
under the exchange's rate limit."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness import FULL_TABLES, ROOT, PulumiProject, SandboxAccount, SandboxProcess
from tests.proof.conftest import agreement


def test_two_ups_on_one_stack_one_is_refused_by_the_lock(
    tmp_path: Path, pulumi_home: Path, clean_faults: SandboxProcess, account: SandboxAccount,
    postgres_backend: str, report: Callable[..., None],
) -> None:
    sandbox = clean_faults
    project = PulumiProject.create(tmp_path / "project", pulumi_home, backend=postgres_backend)
    project.use_account(sandbox.base_url, account)
    project.set_keys([{"name": f"k{i}"} for i in range(6)])
    sandbox.add_fault(action="latency", method="POST", path="/sapi/v1/margin/apiKey", delay_ms=500)
    cmd = ["pulumi", "up", "--yes", "--skip-preview", "--stack", project.stack, "--non-interactive"]
    runs = [subprocess.Popen(cmd, cwd=project.directory, env=project.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    results = [(r.wait(timeout=300), r.stdout.read() if r.stdout else "") for r in runs]
    sandbox.clear_faults()
    codes = sorted(code for code, _ in results)
    assert codes[0] == 0 and codes[1] != 0, results
    refused = next(out for code, out in results if code != 0)
    assert "currently locked" in refused
    seen = agreement(project, sandbox, account)
    assert seen == {"exchange": 6, "state": 6, "agree": True, "duplicates": 0}
    report("contention", case="two ups on one stack", outcome="one refused by the lock", **seen)


KEYS_PER_STACK = 22
STACKS = 4 if FULL_TABLES else 2  # `make proof`: four stacks; `make test`: two, side by side


@pytest.fixture
def limited_sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    # 20 of weight per endpoint per minute per account: enough for a run's one GET /api/v3/account
    # (weight 20: which account this is) and two Query Isolated Margin Account Info (weight 10:
    # the preview gate's and the up's room count), not for the 22 creates of each stack below,
    # which go past the limit and must wait it out.
    # Windows of 15 s that start at each account's first request: a stack's 22 creates land in
    # one window (no minute boundary to straddle, no sleep to line up with one), and the ones
    # past the limit wait out the rest of it as Binance's Retry-After says.
    process = SandboxProcess(tmp_path / "limited", uid_weight_limit=20, rate_window_ms=15000)
    yield process
    process.stop()


@pytest.mark.long
def test_runner_over_many_stacks_under_the_rate_limit_applies_every_stack(
    tmp_path: Path, pulumi_home: Path, limited_sandbox: SandboxProcess, postgres_backend: str,
    report: Callable[..., None],
) -> None:
    sandbox = limited_sandbox
    first = PulumiProject.create(tmp_path / "infra", pulumi_home, stack="s0", backend=postgres_backend)
    stacks = [first] + [first.other_stack(f"s{i}") for i in range(1, STACKS)]
    accounts = []
    for stack in stacks:
        accounts.append(sandbox.create_account("ED25519"))
        stack.use_account(sandbox.base_url, accounts[-1])
        stack.set_keys([{"name": f"k{i}", "ipWhitelist": ["10.0.0.1"]} for i in range(KEYS_PER_STACK)])
    out = tmp_path / "summary.json"
    run = subprocess.run(
        [sys.executable, "-m", "margin_special_keys.gitops",
         "up", "--project", str(first.directory), "--parallel", "3",
         "--json", str(out)],
        cwd=ROOT, env=first.env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    summary = json.loads(out.read_text())
    assert all(s["ok"] for s in summary["stacks"])
    throttled = sum(1 for r in sandbox.requests_log() if r["status"] == 429)
    assert throttled > 0  # the limit was really hit, and waited out
    for stack, acct in zip(stacks, accounts, strict=True):
        assert agreement(stack, sandbox, acct) == {
            "exchange": KEYS_PER_STACK, "state": KEYS_PER_STACK, "agree": True, "duplicates": 0}
    report("contention", case=f"runner over {STACKS} stacks at 20 weight/min", outcome="all applied",
           throttled=throttled)
