"""A running sandbox exchange: start `python -m margin_special_keys.sandbox serve` on a loopback
port, wait for its URL, talk to its admin interface, stop it. Shared by the demo, the benchmarks
and the tests.

It reads the exchange only through the admin interface, never through the client under test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import requests

ROOT = Path(__file__).resolve().parent.parent


class SandboxAccount(dict[str, str]):
    """Credentials of a sandbox account; its repr (in a failure's output) hides them."""

    def __repr__(self) -> str:
        return f"SandboxAccount(accountId={self.get('accountId')!r}, credentials=<hidden>)"


def running_url(data_dir: Path) -> str | None:
    """The URL of a sandbox already serving `data_dir`, or None."""
    url_file = data_dir / "url"
    if not url_file.exists():
        return None
    url = url_file.read_text().strip()
    try:
        requests.get(f"{url}/api/v3/time", timeout=2).raise_for_status()
    except requests.RequestException:
        return None
    return url


class SandboxProcess:
    """`python -m margin_special_keys.sandbox serve` on loopback. `detached`: it outlives this
    process (the demo)."""

    def __init__(self, data_dir: Path, uid_weight_limit: int | None = None,
                 max_api_keys: int | None = None, dialect: str = "", port: int | None = 0,
                 detached: bool = False, rate_window_ms: int | None = None) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (data_dir / "url").unlink(missing_ok=True)
        args = [sys.executable, "-m", "margin_special_keys.sandbox", "serve", "--data-dir", str(data_dir)]
        if port is not None:
            args += ["--port", str(port)]
        if uid_weight_limit is not None:
            args += ["--uid-weight-limit", str(uid_weight_limit)]
        if max_api_keys is not None:
            args += ["--max-api-keys", str(max_api_keys)]
        if rate_window_ms is not None:
            args += ["--rate-window-ms", str(rate_window_ms)]
        if dialect:
            args += ["--dialect", dialect]
        self._log: IO[bytes] = open(data_dir / "server.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=detached)
        deadline = time.monotonic() + 15
        while not (data_dir / "url").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox did not start: {(data_dir / 'server.log').read_text()}")
            time.sleep(0.05)
        self.base_url = (data_dir / "url").read_text().strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        self._log.close()

    @staticmethod
    def stop_detached(data_dir: Path) -> bool:
        """Stop a detached sandbox of `data_dir` (by its pid file); False when none runs."""
        pid_file = data_dir / "pid"
        if running_url(data_dir) is None or not pid_file.exists():
            return False
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
        return True

    # --- the admin interface ---

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        token = (self.data_dir / "admin-token").read_text().strip()
        response = requests.request(method, f"{self.base_url}/admin/{path}", json=body, timeout=10,
                                    headers={"X-Sandbox-Admin-Token": token})
        response.raise_for_status()
        return response.json()

    def add_fault(self, **rule: Any) -> int:
        return int(self.admin("POST", "faults", rule)["id"])

    def clear_faults(self) -> None:
        self.admin("DELETE", "faults")

    def set_dialect(self, **switches: str) -> dict[str, str]:
        """Every switch not named returns to its default."""
        return dict(self.admin("POST", "dialect", switches))

    def set_account(self, account_id: str, **flags: Any) -> dict[str, Any]:
        return dict(self.admin("POST", f"accounts/{account_id}", flags))

    def set_key_permission_mode(self, api_key: str, mode: str) -> None:
        """Drift rehearsal: the key is listed with another permission mode from now on."""
        self.admin("POST", f"keys/{api_key}", {"permissionMode": mode})

    def set_caller_address(self, account_id: str, address: str | None) -> None:
        """The public address this account's requests (from loopback) stand for, as special key
        whitelists see them; None clears it."""
        if address is None:
            self.admin("DELETE", "caller-address", {"accountId": account_id})
        else:
            self.admin("POST", "caller-address", {"accountId": account_id, "address": address})

    def special_keys(self, account_id: str | None = None) -> list[dict[str, Any]]:
        keys = self.admin("GET", "keys")
        return [k for k in keys if account_id is None or k["accountId"] == account_id]

    def request_counts(self) -> dict[str, int]:
        return dict(self.admin("GET", "state")["counts"])

    def requests_log(self, account_id: str | None = None) -> list[dict[str, Any]]:
        """Every request answered since the last reset; with `account_id`, that account's only
        (a test's run can share the sandbox with what an earlier test left running)."""
        requests = list(self.admin("GET", "state")["requests"])
        return [r for r in requests if account_id is None or r.get("account") == account_id]

    def mutations(self) -> list[tuple[str, str]]:
        """The requests that could change the exchange, in the order they arrived."""
        return [(r["method"], r["path"]) for r in self.requests_log()
                if r["method"] in ("POST", "PUT", "DELETE")]

    def reset_requests(self) -> None:
        self.admin("DELETE", "requests")

    def create_account(self, key_type: str = "ED25519", account_type: str = "CROSS_MARGIN_CLASSIC",
                       isolated_symbols: str = "BTCUSDT,ETHUSDT") -> SandboxAccount:
        """What `python -m margin_special_keys.sandbox account create` makes, through the running
        server's admin interface (no process per account)."""
        return SandboxAccount(self.admin("POST", "accounts", {
            "type": account_type, "keyType": key_type,
            "isolatedSymbols": [s.strip() for s in isolated_symbols.split(",") if s.strip()]}))
