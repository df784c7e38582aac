"""What the test levels share, on top of the shared infrastructure in the packages: a running
sandbox (sandbox/process.py) and Pulumi projects on the real engine (gitops/engine.py), plus what
only tests need: a person's own script on a sandbox account, secret comparisons, fault tables.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from margin_special_keys.binance.client import BinanceClient
from margin_special_keys.gitops.engine import ROOT, TOOLS_BIN, Run, ensure_engine
from margin_special_keys.gitops.engine import PulumiProject as _PulumiProject
from margin_special_keys.sandbox.process import SandboxAccount
from margin_special_keys.sandbox.process import SandboxProcess as _SandboxProcess

__all__ = ["FULL_TABLES", "ROOT", "TOOLS_BIN", "PulumiProject", "Run", "SandboxAccount", "SandboxProcess",
           "ensure_engine", "same_secret", "TEST_IPS", "UNKNOWN_OUTCOME_FAULTS"]

# `make proof` (PROOF_REPORT set) runs every cell of the engine-level tables (docs/reliability.md);
# `make test` runs one cell per operation or key type there, since tests/provider runs each table
# whole, in process, against the sandbox.
FULL_TABLES = bool(os.environ.get("PROOF_REPORT"))

TEST_IPS = ["198.51.100.7"]  # a documentation address (RFC 5737): the whitelist of test keys

# Sandbox fault rules for the four ways a request's outcome goes wrong, shared by every level.
UNKNOWN_OUTCOME_FAULTS: dict[str, dict[str, Any]] = {
    "5xx before acting": {"action": "error", "status": 503, "code": -1001, "msg": "Internal error."},
    "5xx after acting": {"action": "error_after", "status": 500},
    "connection dropped after acting": {"action": "drop_after"},
    "429 with Retry-After": {"action": "error", "status": 429, "code": -1003,
                             "msg": "Too many requests.", "retry_after": 1},
}


class SandboxProcess(_SandboxProcess):
    def script_client(self, account: dict[str, str]) -> BinanceClient:
        """Someone's own script on this account, making or editing keys behind the stack's back."""
        from margin_special_keys.settings import make_client, read_settings

        config = {"binance:apiKey": account["apiKey"], "binance:baseUrl": self.base_url}
        config.update({"binance:privateKey": account["privateKey"]} if "privateKey" in account
                      else {"binance:secretKey": account["secretKey"]})
        return make_client(read_settings(config.get, {}))


def same_secret(held: str | None, expected: str | None) -> bool:
    """Compare secrets by digest, so a failing assertion never prints one."""
    def digest(value: str | None) -> str | None:
        return None if value is None else hashlib.sha256(value.strip().encode()).hexdigest()

    return digest(held) == digest(expected)


class PulumiProject(_PulumiProject):
    """The engine's project driver, whose keys get TEST_IPS where a test declares no whitelist."""

    def set_keys(self, keys: list[dict[str, Any]], *, as_given: bool = False) -> None:
        """Every trading key needs a whitelist (or allowAnyIp); `as_given` declares exactly what
        the test wrote."""
        if not as_given:
            keys = [k if not isinstance(k, dict) or "ipWhitelist" in k or "allowAnyIp" in k
                    else {**k, "ipWhitelist": TEST_IPS} for k in keys]
        super().set_keys(keys)
