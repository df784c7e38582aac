"""No private key, HMAC secret or provider credential in plaintext anywhere a person could look.

A full lifecycle (create, IP edit, rotation, a rotation under an overlap window with its
credentials sealed to a trading host, a failing create, destroy) of every key type, with
the engine's most verbose logging flowing to every plugin, captured from stderr and log files.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness import PulumiProject, SandboxAccount, SandboxProcess

VERBOSE = ("-v=11", "--logflow", "--logtostderr")


def pem_lines(pem: str) -> list[str]:
    """The base64 lines of a PEM: any one of them in a text is a leak."""
    return [ln for ln in pem.strip().splitlines() if ln and not ln.startswith("-----")]


def needles(project: PulumiProject, account: SandboxAccount) -> dict[str, str]:
    found = {"provider apiKey": account["apiKey"]}
    for i, line in enumerate(pem_lines(account["privateKey"])):
        found[f"provider privateKey line {i}"] = line
    credentials = project.outputs(show_secrets=True).get("credentials", {})
    for name, held in credentials.items():
        if "secretKey" in held:
            found[f"{name} secretKey"] = held["secretKey"]
        for i, line in enumerate(pem_lines(held.get("privateKey", ""))):
            found[f"{name} privateKey line {i}"] = line[:48]
        previous = held.get("previous") or {}  # during an overlap window
        for i, line in enumerate(pem_lines(previous.get("privateKey", ""))):
            found[f"{name} previous privateKey line {i}"] = line[:48]
    return found


@pytest.mark.long
def test_lifecycle_leaks_nothing(project: PulumiProject, clean_faults: SandboxProcess,
                                 account: SandboxAccount, tmp_path: Path,
                                 report: Callable[..., None]) -> None:
    sandbox = clean_faults
    logs = tmp_path / "engine-logs"
    logs.mkdir()
    project.extra_env["TMPDIR"] = str(logs)  # where the engine's glog files go without --logtostderr
    texts: dict[str, str] = {}
    secrets: dict[str, str] = {}

    def capture(label: str, *args: str, check: bool = True, makes_secrets: bool = False) -> None:
        run = project.run(*args, check=check)
        texts[label] = run.output
        texts[f"{label}: stack export"] = project.run("stack", "export").stdout
        if makes_secrets:  # a create or a rotation: the new keys' secrets join the search
            secrets.update(needles(project, account))

    from margin_special_keys.age import generate_identity

    # The Ed25519 key rotates under an overlap window and is sealed to a trading host: the
    # previous key's secret and the sealed output travel the same logs.
    keys: list[dict[str, Any]] = [
        {"name": "ed", "keyType": "ED25519", "ipWhitelist": ["10.0.0.1"], "overlapHours": 24,
         "deliverTo": [str(generate_identity().recipient)]},
        {"name": "rsa", "keyType": "RSA", "symbol": "BTCUSDT", "ipWhitelist": ["10.0.0.1"]},
        {"name": "hmac", "keyType": "HMAC", "ipWhitelist": ["10.0.0.1"]}]
    project.set_keys(keys)
    capture("create", "up", "--yes", *VERBOSE, makes_secrets=True)
    # The control: the same search finds every generated secret where it is meant to be shown.
    shown = project.run("stack", "export", "--show-secrets").stdout
    generated = {k: v for k, v in secrets.items() if not k.startswith("provider")}
    assert len(generated) >= 5 and all(v in shown for v in generated.values())
    # In one run: the HMAC key's IPs edited in place, the other two rotated (replaced); this
    # run's engine log goes to glog files in TMPDIR.
    project.set_keys([{**k, "ipWhitelist": ["10.0.0.2"]} if k["keyType"] == "HMAC" else
                      {**k, "keepers": {"r": "2"}} for k in keys])
    capture("ip edit and rotation", "up", "--yes", "-v=11", "--logflow", makes_secrets=True)
    capture("refresh", "refresh", "--yes", *VERBOSE)
    sandbox.add_fault(action="error", method="POST", path="/sapi/v1/margin/apiKey", status=400,
                      code=-3026, msg="Your input param is invalid.")
    project.set_keys([*keys, {"name": "fails", "keyType": "HMAC"}])
    capture("failing create", "up", "--yes", *VERBOSE, check=False)
    sandbox.clear_faults()
    capture("destroy", "destroy", "--yes", *VERBOSE)

    for path in logs.rglob("*"):
        if path.is_file():
            texts[f"engine log {path.name}"] = path.read_text(errors="replace")
    for path in (project.directory / "state").rglob("*"):
        if path.is_file():
            texts[f"state file {path.name}"] = path.read_text(errors="replace")
    texts["sandbox log"] = (sandbox.data_dir / "server.log").read_text(errors="replace")
    texts["sandbox request log"] = json.dumps(sandbox.requests_log())
    texts["stack config"] = "".join(p.read_text() for p in (project.directory / "stacks").glob("*.yaml"))
    for blob in re.findall(r'"__provider": "([A-Za-z0-9+/=]+)"', "".join(texts.values())):
        texts["pickled provider"] = base64.b64decode(blob).decode("latin-1")

    assert len(secrets) >= 10 and any("secretKey" in k for k in secrets)
    assert any(name.startswith("engine log") for name in texts), "no engine log captured"
    leaks = [f"{secret_name} in {where}" for where, text in texts.items()
             for secret_name, value in secrets.items() if value in text]
    assert leaks == []
    report("leaks", places=len(texts), secrets=len(secrets),
           bytes_searched=sum(len(t) for t in texts.values()), leaks=len(leaks))
