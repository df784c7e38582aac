"""Several stacks of one project on the real engine, and the GitOps runner over them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.harness import ROOT, PulumiProject, SandboxAccount, SandboxProcess


class Fleet:
    """Stacks desk-a, desk-b, … of one project, each on a sandbox account of its own, or all on
    one account (`shared_account`: one firm account whose keys several stacks manage)."""

    def __init__(self, tmp_path: Path, home: Path, sandbox: SandboxProcess, size: int = 2,
                 backend: str | None = None, shared_account: bool = False) -> None:
        self.sandbox = sandbox
        first = PulumiProject.create(tmp_path / "infra", home, stack="desk-a", backend=backend)
        self.stacks = {"desk-a": first}
        for name in ("desk-b", "desk-c")[:size - 1]:
            self.stacks[name] = first.other_stack(name)
        self.accounts: dict[str, SandboxAccount] = {}
        shared = sandbox.create_account("ED25519") if shared_account else None
        for name, stack in self.stacks.items():
            self.accounts[name] = shared or sandbox.create_account("ED25519")
            stack.use_account(sandbox.base_url, self.accounts[name])
        self.directory = first.directory

    def _command(self, args: tuple[str, ...], out: str = "summary") -> list[str]:
        return [sys.executable, "-m", "margin_special_keys.gitops", *args, "--project",
                str(self.directory), "--json", str(self.directory / f"{out}.json"),
                "--markdown", str(self.directory / f"{out}.md"), "--parallel", "3"]

    def runner(self, *args: str) -> tuple[int, dict[str, Any], str, str]:
        out_json = self.directory / "summary.json"
        out_md = self.directory / "summary.md"
        out_json.unlink(missing_ok=True)
        out_md.unlink(missing_ok=True)
        proc = subprocess.run(self._command(args), cwd=ROOT, env=self.stacks["desk-a"].env(),
                              capture_output=True, text=True, timeout=600)
        summary = json.loads(out_json.read_text()) if out_json.exists() else {}
        return proc.returncode, summary, out_md.read_text() if out_md.exists() else "", proc.stderr

    def start_runner(self, *args: str) -> subprocess.Popen[str]:
        """The runner in the background, as another pipeline runs it (its own summary files)."""
        return subprocess.Popen(self._command(args, out="background"), cwd=ROOT,
                                env=self.stacks["desk-a"].env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def keys(self, stack: str) -> list[dict[str, Any]]:
        return self.sandbox.special_keys(self.accounts[stack]["accountId"])


def rows(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["stack"]: r for r in summary["stacks"]}


def declared_fleet(tmp_path: Path, home: Path, sandbox: SandboxProcess, size: int) -> Fleet:
    fleet = Fleet(tmp_path, home, sandbox, size)
    fleet.stacks["desk-a"].set_keys([{"name": "a1", "ipWhitelist": ["10.0.0.1"]},
                                     {"name": "a2", "symbol": "BTCUSDT"}])
    fleet.stacks["desk-b"].set_keys([{"name": "b1", "keyType": "HMAC"}])
    return fleet
