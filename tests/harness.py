"""What the test levels share: a running sandbox exchange and Pulumi projects on the real engine.

`SandboxProcess` runs `python -m sandbox serve` as a real process on a loopback port, and reads
the exchange through its admin interface (never through the client under test). `PulumiProject`
drives the real `pulumi` CLI built by tools/setup-engine.sh, with a file backend and passphrase
secrets in a temporary directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from providers.binance.client import BinanceClient

ROOT = Path(__file__).resolve().parent.parent
TOOLS_BIN = ROOT / ".tools" / "bin"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PASSPHRASE = "test-passphrase-not-secret"
TEST_IPS = ["198.51.100.7"]  # a documentation address (RFC 5737): the whitelist of test keys

# Sandbox fault rules for the four ways a request's outcome goes wrong, shared by every level.
UNKNOWN_OUTCOME_FAULTS: dict[str, dict[str, Any]] = {
    "5xx before acting": {"action": "error", "status": 503, "code": -1001, "msg": "Internal error."},
    "5xx after acting": {"action": "error_after", "status": 500},
    "connection dropped after acting": {"action": "drop_after"},
    "429 with Retry-After": {"action": "error", "status": 429, "code": -1003,
                             "msg": "Too many requests.", "retry_after": 1},
}


def ensure_engine() -> Path:
    """The engine in .tools/bin; built when missing, never skipped."""
    pulumi = TOOLS_BIN / "pulumi"
    if not (pulumi.exists() and (TOOLS_BIN / "pulumi-language-python").exists()):
        subprocess.run(["bash", str(ROOT / "tools" / "setup-engine.sh")], check=True)
    return pulumi


class SandboxProcess:
    def __init__(self, data_dir: Path, uid_weight_limit: int | None = None,
                 max_api_keys: int | None = None) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "sandbox", "serve", "--data-dir", str(data_dir), "--port", "0"]
        if uid_weight_limit is not None:
            args += ["--uid-weight-limit", str(uid_weight_limit)]
        if max_api_keys is not None:
            args += ["--max-api-keys", str(max_api_keys)]
        self._log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        url_file = data_dir / "url"
        deadline = time.monotonic() + 15
        while not url_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox did not start: {(data_dir / 'server.log').read_text()}")
            time.sleep(0.05)
        self.base_url = url_file.read_text().strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        self._log.close()

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.request(method, f"{self.base_url}/admin/{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def add_fault(self, **rule: Any) -> int:
        return int(self.admin("POST", "faults", rule)["id"])

    def clear_faults(self) -> None:
        self.admin("DELETE", "faults")

    def special_keys(self, account_id: str | None = None) -> list[dict[str, Any]]:
        keys = self.admin("GET", "keys")
        return [k for k in keys if account_id is None or k["accountId"] == account_id]

    def request_counts(self) -> dict[str, int]:
        return dict(self.admin("GET", "state")["counts"])

    def requests_log(self) -> list[dict[str, Any]]:
        return list(self.admin("GET", "state")["requests"])

    def mutations(self) -> list[tuple[str, str]]:
        """The requests that could change the exchange, in the order they arrived."""
        return [(r["method"], r["path"]) for r in self.requests_log()
                if r["method"] in ("POST", "PUT", "DELETE")]

    def reset_requests(self) -> None:
        self.admin("DELETE", "requests")

    def script_client(self, account: dict[str, str]) -> BinanceClient:
        """Someone's own script on this account, making or editing keys behind the stack's back."""
        from providers.settings import make_client, read_settings

        config = {"binance:apiKey": account["apiKey"], "binance:baseUrl": self.base_url}
        config.update({"binance:privateKey": account["privateKey"]} if "privateKey" in account
                      else {"binance:secretKey": account["secretKey"]})
        return make_client(read_settings(config.get, {}))

    def create_account(self, key_type: str = "ED25519", account_type: str = "CROSS_MARGIN_CLASSIC",
                       isolated_symbols: str = "BTCUSDT,ETHUSDT") -> SandboxAccount:
        out = subprocess.run(
            [sys.executable, "-m", "sandbox", "account", "create", "--data-dir", str(self.data_dir),
             "--key-type", key_type, "--type", account_type, "--isolated-symbols", isolated_symbols],
            cwd=ROOT, check=True, capture_output=True, text=True,
        )
        return SandboxAccount(json.loads(out.stdout))


def same_secret(held: str | None, expected: str | None) -> bool:
    """Compare secrets by digest, so a failing assertion never prints one."""
    def digest(value: str | None) -> str | None:
        return None if value is None else hashlib.sha256(value.strip().encode()).hexdigest()

    return digest(held) == digest(expected)


class SandboxAccount(dict[str, str]):
    """Credentials of a sandbox account; its repr (in pytest's failure output) hides them."""

    def __repr__(self) -> str:
        return f"SandboxAccount(accountId={self.get('accountId')!r}, credentials=<hidden>)"


@dataclass
class Run:
    args: list[str]
    returncode: int
    stdout: str = field(repr=False)
    stderr: str = field(repr=False)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class PulumiProject:
    """A Pulumi project in `directory` running this repository's program and providers."""

    directory: Path
    home: Path
    stack: str = "test"
    # Outputs of runs may hold secrets (--show-secrets): kept out of reprs, which pytest prints.
    extra_env: dict[str, str] = field(default_factory=dict, repr=False)
    runs: list[Run] = field(default_factory=list, repr=False)

    @classmethod
    def create(cls, directory: Path, home: Path, program: str | None = None,
               stack: str = "test") -> PulumiProject:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "state").mkdir(exist_ok=True)
        (directory / "stacks").mkdir(exist_ok=True)
        (directory / "Pulumi.yaml").write_text(
            "name: margin-special-keys\n"
            "runtime:\n  name: python\n  options:\n    toolchain: pip\n"
            f"    virtualenv: {ROOT / '.venv'}\n"
            "stackConfigDir: stacks\n"
        )
        if program is None:
            shutil.copy(ROOT / "__main__.py", directory / "__main__.py")
        else:
            (directory / "__main__.py").write_text(program)
        project = cls(directory, home, stack)
        project.run("stack", "init", stack)
        return project

    def other_stack(self, stack: str) -> PulumiProject:
        """Another stack of the same project (one stack per sub-account)."""
        project = PulumiProject(self.directory, self.home, stack, dict(self.extra_env))
        project.run("stack", "init", stack)
        return project

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "PULUMI_"))}
        env.update(
            PATH=f"{TOOLS_BIN}{os.pathsep}{env.get('PATH', '')}",
            PULUMI_HOME=str(self.home),
            PULUMI_BACKEND_URL=f"file://{self.directory / 'state'}",
            PULUMI_CONFIG_PASSPHRASE=PASSPHRASE,
            PULUMI_SKIP_UPDATE_CHECK="true",
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
            PULUMI_SKIP_CONFIRMATIONS="true",
            NO_COLOR="1",
        )
        env.update(self.extra_env)
        return env

    def run(self, *args: str, check: bool = True, input: str | None = None,
            timeout: float = 300) -> Run:
        cmd = ["pulumi", *args, "--non-interactive", "--color", "never"]
        if args[:2] != ("stack", "init") and args[:1] != ("version",):
            cmd += ["--stack", self.stack]
        proc = subprocess.run(
            cmd, cwd=self.directory, env=self.env(), capture_output=True, text=True,
            input=input, timeout=timeout,
        )
        run = Run(cmd, proc.returncode, proc.stdout, proc.stderr)
        self.runs.append(run)
        if check and proc.returncode != 0:
            raise AssertionError(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{run.output}")
        return run

    # --- config ---

    def set_secret(self, key: str, value: str) -> None:
        # Through stdin: a secret never travels in argv, where `ps` would show it.
        self.run("config", "set", "--secret", key, input=value)

    def set_config(self, key: str, value: str) -> None:
        self.run("config", "set", key, value)

    def set_object(self, key: str, value: Any) -> None:
        payload = {f"margin-special-keys:{key}": {
            "value": json.dumps(value), "objectValue": value, "secret": False}}
        self.run("config", "set-all", "--json", json.dumps(payload))

    def use_account(self, base_url: str, account: dict[str, str]) -> None:
        self.set_config("binance:baseUrl", base_url)
        self.set_secret("binance:apiKey", account["apiKey"])
        if "privateKey" in account:
            self.set_secret("binance:privateKey", account["privateKey"])
        else:
            self.set_secret("binance:secretKey", account["secretKey"])

    def set_keys(self, keys: list[dict[str, Any]], *, as_given: bool = False) -> None:
        """Declare the stack's keys. A key without ipWhitelist or allowAnyIp gets TEST_IPS, since
        every trading key needs one; `as_given` declares exactly what the test wrote."""
        if not as_given:
            keys = [k if not isinstance(k, dict) or "ipWhitelist" in k or "allowAnyIp" in k
                    else {**k, "ipWhitelist": TEST_IPS} for k in keys]
        self.set_object("keys", keys)

    # --- lifecycle ---

    def up(self, check: bool = True) -> Run:
        return self.run("up", "--yes", "--skip-preview", check=check)

    def preview(self, *extra: str, check: bool = True) -> Run:
        return self.run("preview", *extra, check=check)

    def preview_steps(self) -> list[dict[str, Any]]:
        """The steps a preview plans, from `pulumi preview --json`."""
        run = self.run("preview", "--json")
        return list(json.loads(run.stdout).get("steps", []))

    def planned_ops(self) -> dict[str, list[str]]:
        """Resource name -> the operations `pulumi preview` plans for it."""
        ops: dict[str, list[str]] = {}
        for step in self.preview_steps():
            ops.setdefault(step["urn"].rsplit("::", 1)[-1], []).append(step["op"])
        return ops

    def expect_no_changes(self) -> None:
        self.run("preview", "--expect-no-changes")

    def refresh(self, *extra: str) -> Run:
        return self.run("refresh", "--yes", "--skip-preview", *extra)

    def destroy(self) -> Run:
        return self.run("destroy", "--yes", "--skip-preview")

    def export(self) -> dict[str, Any]:
        return dict(json.loads(self.run("stack", "export").stdout))

    def outputs(self, show_secrets: bool = False) -> dict[str, Any]:
        args = ["stack", "output", "--json"] + (["--show-secrets"] if show_secrets else [])
        return dict(json.loads(self.run(*args).stdout))

    def resources(self, type_suffix: str = "MarginSpecialKey") -> list[dict[str, Any]]:
        deployment = self.export()["deployment"]
        return [r for r in deployment.get("resources", []) if r["type"].endswith(type_suffix)]
