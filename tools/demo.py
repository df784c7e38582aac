"""`make demo` and `make demo-destroy`: the product on the embedded sandbox exchange.

up:      start the sandbox in the background (data in .sandbox/), provision a demo account once,
         write the `sandbox-demo` stack's config (credentials with --secret, through stdin), run
         `pulumi up --yes`, then `pulumi preview --expect-no-changes`, and show the outputs.
destroy: `pulumi destroy --yes` of the sandbox-demo stack, then stop the sandbox.

The demo uses only its own backend (.state/), its own stack name and its own demo-only
passphrase, whatever PULUMI_BACKEND_URL or PULUMI_CONFIG_PASSPHRASE say: it must never touch a
real stack, and it talks only to the sandbox on loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.engine import TOOLS_BIN  # noqa: E402
from devtools.sandbox import SandboxProcess, running_url  # noqa: E402
from margin_special_keys.gitops.engine import pulumi_environment  # noqa: E402
from margin_special_keys.settings import ALLOW_BASE_URL_ENV  # noqa: E402

SANDBOX_DIR = ROOT / ".sandbox"
STATE_DIR = ROOT / ".state"
STACK = "sandbox-demo"
DEMO_PASSPHRASE = "demo-passphrase-for-the-local-sandbox-only"

DEMO_KEYS: list[dict[str, Any]] = [
    {"name": "cross-ed25519", "ipWhitelist": ["203.0.113.10", "203.0.113.11"]},
    {"name": "btcusdt-rsa", "keyType": "RSA", "symbol": "BTCUSDT", "ipWhitelist": ["203.0.113.10"]},
    {"name": "ethusdt-hmac", "keyType": "HMAC", "symbol": "ETHUSDT", "ipWhitelist": ["203.0.113.12"]},
]


def environment() -> dict[str, str]:
    # A real stack's backend or passphrase from the environment must never serve the demo.
    base = {k: v for k, v in os.environ.items()
            if k not in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE",
                         "PULUMI_CONFIG_PASSPHRASE_FILE")}
    url = running_url(SANDBOX_DIR)
    if url:  # the demo's environment vouches for its own sandbox, as a sandbox pipeline would
        base[ALLOW_BASE_URL_ENV] = url
    return pulumi_environment(base, backend=f"file://{STATE_DIR}", passphrase=DEMO_PASSPHRASE,
                              tools_bin=TOOLS_BIN,
                              home=ROOT / ".tools" / "pulumi-home")


def pulumi(*args: str, stdin: str | None = None, capture: bool = False,
           check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["pulumi", *args, "--stack", STACK, "--non-interactive"], cwd=ROOT, env=environment(),
        input=stdin, text=True, capture_output=capture, check=check,
    )


def start_sandbox() -> str:
    url = running_url(SANDBOX_DIR)
    if url:
        print(f"sandbox exchange already running at {url}")
        return url
    # Detached: it outlives `make demo`, like a real exchange; the same data dir keeps its port.
    server = SandboxProcess(SANDBOX_DIR, port=None, detached=True)
    print(f"sandbox exchange started at {server.base_url} (pid {server.proc.pid}, data in .sandbox/)")
    return server.base_url


def stop_sandbox() -> None:
    if SandboxProcess.stop_detached(SANDBOX_DIR):
        print("sandbox exchange stopped")


def configure_stack(url: str) -> None:
    STATE_DIR.mkdir(exist_ok=True)
    pulumi("stack", "select", "--create", capture=True)
    account_file = SANDBOX_DIR / "demo-account-id"
    configured = pulumi("config", "get", "binance:apiKey", capture=True, check=False).returncode == 0
    if not (account_file.exists() and configured):
        created = subprocess.run(
            [sys.executable, "-m", "margin_special_keys.sandbox",
             "account", "create", "--data-dir", str(SANDBOX_DIR),
             "--key-type", "ED25519"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        )
        account = json.loads(created.stdout)
        # Through stdin, never argv: secrets stay out of `ps` and shell history.
        pulumi("config", "set", "--secret", "binance:apiKey", stdin=account["apiKey"], capture=True)
        pulumi("config", "set", "--secret", "binance:privateKey", stdin=account["privateKey"],
               capture=True)
        account_file.write_text(account["accountId"] + "\n")
        print(f"demo account {account['accountId']} provisioned on the sandbox")
    pulumi("config", "set", "binance:baseUrl", url, capture=True)
    keys = {"margin-special-keys:keys": {
        "value": json.dumps(DEMO_KEYS), "objectValue": DEMO_KEYS, "secret": False}}
    pulumi("config", "set-all", "--json", json.dumps(keys), capture=True)


def up() -> None:
    url = start_sandbox()
    configure_stack(url)
    pulumi("up", "--yes")
    print("\n== pulumi preview --expect-no-changes")
    pulumi("preview", "--expect-no-changes")
    print("\n== stack outputs (secrets stay masked)")
    pulumi("stack", "output")
    print(f"""
Look around (the demo stack's passphrase is a demo-only one; never use it for real stacks):
  {sys.executable} -m margin_special_keys.sandbox keys --data-dir .sandbox  # the keys on the exchange
  source tools/env.sh
  export PULUMI_CONFIG_PASSPHRASE={DEMO_PASSPHRASE}
  export PULUMI_BACKEND_URL=file://{STATE_DIR}
  export {ALLOW_BASE_URL_ENV}={url}    # stack config alone never aims at a sandbox
  pulumi stack output --stack {STACK} --show-secrets        # the private keys
  pulumi stack export --stack {STACK}                       # secrets appear only as ciphertext
Edit DEMO_KEYS in tools/demo.py (or the stack config) and run `make demo` again.
Tear down: make demo-destroy""")


def destroy() -> None:
    if pulumi("stack", "select", capture=True, check=False).returncode == 0:
        start_sandbox()
        pulumi("destroy", "--yes")
    stop_sandbox()


if __name__ == "__main__":
    os.umask(0o077)  # .state/, .sandbox/ and the stack file: the owner's alone
    command = sys.argv[1] if len(sys.argv) > 1 else "up"
    {"up": up, "destroy": destroy}[command]()
