"""`make demo` and `make demo-destroy`: the product on the embedded sandbox exchange.

up:      start the sandbox in the background (data in .sandbox/), provision a demo account once,
         write the `dev` stack's config (credentials with --secret, through stdin), run
         `pulumi up --yes`, then `pulumi preview --expect-no-changes`, and show the outputs.
destroy: `pulumi destroy --yes` of the dev stack, then stop the sandbox.

Local runs use a file backend in .state/ and a demo passphrase, unless the environment already
says otherwise (PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE[_FILE]).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_DIR = ROOT / ".sandbox"
STATE_DIR = ROOT / ".state"
STACK = "dev"
DEMO_PASSPHRASE = "demo-passphrase-for-the-local-sandbox-only"

DEMO_KEYS: list[dict[str, Any]] = [
    {"name": "cross-ed25519", "ipWhitelist": ["203.0.113.10", "203.0.113.11"]},
    {"name": "btcusdt-rsa", "keyType": "RSA", "symbol": "BTCUSDT", "ipWhitelist": ["203.0.113.10"]},
    {"name": "ethusdt-hmac", "keyType": "HMAC", "symbol": "ETHUSDT", "ipWhitelist": ["203.0.113.12"]},
]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{ROOT / '.tools' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PULUMI_BACKEND_URL", f"file://{STATE_DIR}")
    if "PULUMI_CONFIG_PASSPHRASE" not in env and "PULUMI_CONFIG_PASSPHRASE_FILE" not in env:
        env["PULUMI_CONFIG_PASSPHRASE"] = DEMO_PASSPHRASE
    env.setdefault("PULUMI_SKIP_UPDATE_CHECK", "true")
    env.setdefault("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "true")
    env.setdefault("PULUMI_HOME", str(ROOT / ".tools" / "pulumi-home"))
    return env


def pulumi(*args: str, stdin: str | None = None, capture: bool = False,
           check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["pulumi", *args, "--stack", STACK, "--non-interactive"], cwd=ROOT, env=environment(),
        input=stdin, text=True, capture_output=capture, check=check,
    )


def sandbox_url() -> str | None:
    url_file = SANDBOX_DIR / "url"
    if not url_file.exists():
        return None
    url = url_file.read_text().strip()
    try:
        requests.get(f"{url}/api/v3/time", timeout=2).raise_for_status()
    except requests.RequestException:
        return None
    return url


def start_sandbox() -> str:
    url = sandbox_url()
    if url:
        print(f"sandbox exchange already running at {url}")
        return url
    SANDBOX_DIR.mkdir(exist_ok=True)
    (SANDBOX_DIR / "url").unlink(missing_ok=True)
    port_file = SANDBOX_DIR / "port"
    port = port_file.read_text().strip() if port_file.exists() else "0"
    for attempt_port in dict.fromkeys([port, "0"]):
        log = open(SANDBOX_DIR / "server.log", "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "serve", "--data-dir", str(SANDBOX_DIR),
             "--port", attempt_port],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives `make demo`, like a real exchange would
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            url = sandbox_url()
            if url:
                port_file.write_text(url.rsplit(":", 1)[1] + "\n")
                print(f"sandbox exchange started at {url} (pid {proc.pid}, data in .sandbox/)")
                return url
            time.sleep(0.1)
        if proc.poll() is None:
            proc.terminate()
    raise SystemExit("the sandbox exchange did not start; see .sandbox/server.log")


def stop_sandbox() -> None:
    pid_file = SANDBOX_DIR / "pid"
    if sandbox_url() and pid_file.exists():
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
        print("sandbox exchange stopped")


def configure_stack(url: str) -> None:
    STATE_DIR.mkdir(exist_ok=True)
    pulumi("stack", "select", "--create", capture=True)
    account_file = SANDBOX_DIR / "demo-account-id"
    configured = pulumi("config", "get", "binance:apiKey", capture=True, check=False).returncode == 0
    if not (account_file.exists() and configured):
        created = subprocess.run(
            [sys.executable, "-m", "sandbox", "account", "create", "--data-dir", str(SANDBOX_DIR),
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
  {sys.executable} -m sandbox keys --data-dir .sandbox     # the keys as the exchange holds them
  source tools/env.sh
  export PULUMI_CONFIG_PASSPHRASE={DEMO_PASSPHRASE}
  pulumi stack output --stack dev --show-secrets            # the private keys
  pulumi stack export --stack dev                           # secrets appear only as ciphertext
Edit DEMO_KEYS in tools/demo.py (or the stack config) and run `make demo` again.
Tear down: make demo-destroy""")


def destroy() -> None:
    if pulumi("stack", "select", capture=True, check=False).returncode == 0:
        if sandbox_url() is None:
            start_sandbox()
        pulumi("destroy", "--yes")
    stop_sandbox()


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "up"
    {"up": up, "destroy": destroy}[command]()
