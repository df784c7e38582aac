"""The CrossGuard policy pack (policies/) on the real engine, run by Pulumi's Go language host
(RunPlugin), against the sandbox: a mandatory violation stops `up` before any write, an advisory
one is a warning, the config file decides the rule; and the pack runs the same from this
repository and from a copy in another folder whose virtualenv holds the package from a wheel.
tests/unit/test_policies.py covers each rule in process."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_consumer_repo import package_index  # noqa: F401 - the fixture
from tests.harness import ROOT, PulumiProject, Run, SandboxProcess

PACK = ROOT / "policies"
VERSION = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text())["version"]  # the package's
KEY = "/sapi/v1/margin/apiKey"


def with_pack(project: PulumiProject, command: str, pack: Path, config: Path,
              *extra: str) -> tuple[Run, list[dict[str, Any]]]:
    """One preview or up with the pack, and the policy events of its event log."""
    log = project.directory / f"events-{len(project.runs)}.jsonl"
    project.extra_env["PULUMI_DEBUG_COMMANDS"] = "true"  # enables --event-log
    run = project.run(command, *extra, "--policy-pack", str(pack), "--policy-pack-config", str(config),
                      "--event-log", str(log), check=False)
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return run, [e["policyEvent"] for e in events if "policyEvent" in e]


def seen(events: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    """(policy, resource name, enforcement level, detail) of each violation."""
    return {(e["policyName"], e["resourceUrn"].rsplit("::", 1)[-1], e["enforcementLevel"],
             e["message"].split("\n")[1]) for e in events}


def write_json(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document))
    return path


def test_a_mandatory_violation_stops_up_before_any_write_an_advisory_one_warns_and_the_config_decides(
    project: PulumiProject, sandbox: SandboxProcess, account: dict[str, str], tmp_path: Path
) -> None:
    project.set_keys([{"name": "desk-a", "ipWhitelist": ["192.0.2.7"]},
                      {"name": "desk-hmac", "keyType": "HMAC", "ipWhitelist": ["192.0.2.8"]}])
    office_only = write_json(tmp_path / "office.json",
                             {"allowed-ip-networks": {"networks": ["203.0.113.0/24"]}})
    with_colo = write_json(tmp_path / "colo.json",
                           {"allowed-ip-networks": {"networks": ["203.0.113.0/24", "192.0.2.0/24"]}})

    # `up` with no preview before it: the policy runs on each key before its create.
    sandbox.reset_requests()
    run, events = with_pack(project, "up", PACK, office_only, "--yes", "--skip-preview")
    assert run.returncode != 0, run.output
    assert sandbox.mutations() == []
    assert sandbox.special_keys(account["accountId"]) == []
    # The engine stops at the first key it finds invalid: which one of the two depends on timing.
    mandatory = {(policy, detail) for policy, _, level, detail in seen(events) if level == "mandatory"}
    assert mandatory and mandatory <= {
        ("allowed-ip-networks", f'key "{name}": ipWhitelist has {ip}, outside the allowed networks'
                                " (203.0.113.0/24)")
        for name, ip in [("desk-a", "192.0.2.7"), ("desk-hmac", "192.0.2.8")]}
    assert "[mandatory]" in run.output and "allowed-ip-networks" in run.output

    # The same stack with the config that allows the colocation network: only the advisory
    # HMAC warning is left, and the up makes both keys.
    run, events = with_pack(project, "up", PACK, with_colo, "--yes", "--skip-preview")
    assert run.returncode == 0, run.output
    assert seen(events) == {("allowed-key-types", "desk-hmac", "advisory",
                             'key "desk-hmac": keyType HMAC is not allowed here (allowed: ED25519, RSA)')}
    assert "[advisory]" in run.output and "allowed-key-types" in run.output
    assert sorted(k["apiName"] for k in sandbox.special_keys(account["accountId"])) == ["desk-a", "desk-hmac"]
    assert [m for m in sandbox.mutations() if m[1] == KEY] == [("POST", KEY), ("POST", KEY)]
    # The event a pipeline reads, whole.
    [event] = events
    assert event == {
        "resourceUrn": "urn:pulumi:test::margin-special-keys::"
                       "pulumi-python:dynamic/binance:MarginSpecialKey::desk-hmac",
        "message": "A margin special key's keyType is one the firm allows.\n"
                   'key "desk-hmac": keyType HMAC is not allowed here (allowed: ED25519, RSA)\n',
        "color": "never", "policyName": "allowed-key-types", "policyPackName": "margin-special-keys",
        "policyPackVersion": VERSION, "policyPackVersionTag": VERSION, "enforcementLevel": "advisory",
        "severity": "medium"}


def test_the_pack_runs_the_same_from_this_repository_and_from_a_consumer_s_copy_on_a_wheel(
    project: PulumiProject, tmp_path: Path, package_index: dict[str, str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A firm's copy of policies/ in a folder of its own: `pulumi install` there makes the pack's
    virtualenv from its requirements.txt (the package from a wheel of this checkout), and a
    preview with it reports exactly what this repository's pack reports, stack policy included."""
    copy = tmp_path / "firm-infra" / "policy"
    shutil.copytree(PACK, copy, ignore=shutil.ignore_patterns("__pycache__"))
    settings = yaml.safe_load((copy / "PulumiPolicy.yaml").read_text())
    settings["runtime"]["options"]["virtualenv"] = "venv"  # as docs/policy-pack.md says
    (copy / "PulumiPolicy.yaml").write_text(yaml.safe_dump(settings))
    # pulumi-policy asks for protobuf~=5.29: resolve with the dev lock's pins, which have both.
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("".join(line.split(" ")[0] + "\n" for line in
                                   (ROOT / "requirements-dev.lock").read_text().splitlines()
                                   if line[:1].isalnum() and "==" in line))
    env = {k: v for k, v in project.env().items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(package_index, PIP_CONSTRAINT=str(constraints))
    installed = subprocess.run(["pulumi", "install", "--non-interactive"], cwd=copy, env=env,
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    where = subprocess.run([str(copy / "venv" / "bin" / "python"), "-c",
                            "import margin_special_keys, pulumi_policy; print(margin_special_keys.__file__)"],
                           cwd=copy, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(copy / "venv" / "lib"))

    project.set_keys([{"name": "desk-a", "ipWhitelist": ["192.0.2.7"]},
                      {"name": "desk-reader", "ipWhitelist": ["203.0.113.9"]},
                      {"name": "btc", "symbol": "BTCUSDT", "ipWhitelist": ["203.0.113.9"],
                       "allowAnyIp": True}])
    config = write_json(tmp_path / "prod.json", {
        "allowed-ip-networks": {"networks": ["203.0.113.0/24"]},
        "permission-mode-by-name": {"rules": [{"pattern": "*-reader", "mode": "READ"}]},
        "max-keys-per-scope": {"maxKeys": 1}})
    # Nothing of this checkout on the copy's import path: its pack finds the package in its venv.
    monkeypatch.delenv("PYTHONPATH", raising=False)
    here, here_events = with_pack(project, "preview", PACK, config)
    there, there_events = with_pack(project, "preview", copy, config)
    expected = {
        ("allowed-ip-networks", "desk-a", "mandatory",
         'key "desk-a": ipWhitelist has 192.0.2.7, outside the allowed networks (203.0.113.0/24)'),
        ("permission-mode-by-name", "desk-reader", "mandatory",
         'key "desk-reader": permissionMode is TRADE; keys matching "*-reader" (here its name "desk-reader")'
         " must be READ"),
        ("no-allow-any-ip", "btc", "mandatory",
         'key "btc": allowAnyIp is true: a trading key with no IP restriction is not allowed here; list the'
         " addresses that use it in ipWhitelist"),
        ("max-keys-per-scope", "margin-special-keys-test", "mandatory",
         'symbol absent (cross margin): 2 keys ("desk-a", "desk-reader"); at most 1 per scope in one stack'),
    }
    assert seen(here_events) == expected, here.output
    assert seen(there_events) == expected, there.output
    assert here.returncode != 0 and there.returncode != 0
    assert f"margin-special-keys@v{VERSION} (local: {PACK})" in here.output
    assert f"margin-special-keys@v{VERSION} (local: " in there.output and "firm-infra/policy)" in there.output
