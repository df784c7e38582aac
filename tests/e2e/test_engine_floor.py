"""The harness on its own: the real engine runs a dynamic resource that does nothing.

This is also the floor the benchmarks compare the special key against.
"""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

from devtools.engine import NOOP_PROGRAM
from tests.harness import ROOT, PulumiProject, SandboxAccount, SandboxProcess

# Written by tools/setup-engine.sh: which language host .tools/bin holds.
LANGUAGE_HOST = ROOT / ".tools" / "language-host"
FALLBACK_HOST = ROOT / ".tools" / "fallback-host"


class FallbackHostProject(PulumiProject):
    """A project run on this project's own language host, the last resort."""

    def env(self) -> dict[str, str]:
        env = super().env()
        env["PATH"] = f"{FALLBACK_HOST}{os.pathsep}{env['PATH']}"
        return env


def test_engine_runs_up_preview_and_destroy_of_a_noop_dynamic_resource(
    tmp_path: Path, pulumi_home: Path
) -> None:
    project = PulumiProject.create(tmp_path / "noop", pulumi_home, program=NOOP_PROGRAM)
    project.set_config("count", "2")

    up = project.run("up", "--yes", "--skip-preview")  # the preview: the no-change one below
    assert "+ 3 created" in up.output or "3 created" in up.output, up.output
    assert project.outputs() == {"answer": 42}
    project.expect_no_changes()
    dynamic = [r for r in project.export()["deployment"]["resources"]
               if r["type"] == "pulumi-python:dynamic:Resource"]
    assert sorted(r["id"] for r in dynamic) == ["noop-noop-0", "noop-noop-1"]

    destroyed = project.destroy()
    assert "3 deleted" in destroyed.output, destroyed.output


def test_engine_reports_its_version(tmp_path: Path, pulumi_home: Path) -> None:
    project = PulumiProject.create(tmp_path / "v", pulumi_home, program=NOOP_PROGRAM)
    version = project.run("version").stdout.strip()
    major, minor = (int(x) for x in version.lstrip("v").split(".")[:2])
    assert (major, minor) >= (3, 270)


def test_about_names_the_python_language_host_and_the_project_virtualenv(
    tmp_path: Path, pulumi_home: Path
) -> None:
    project = PulumiProject.create(tmp_path / "about", pulumi_home, program=NOOP_PROGRAM)
    about = project.run("about").output
    assert str(ROOT / ".venv" / "bin" / "python") in about
    host = re.search(r"^language\s+python\s+(\S+)$", about, re.M)
    assert host, about
    if LANGUAGE_HOST.read_text().startswith("LAST RESORT"):
        assert host.group(1).endswith("-fallback.msk")
    else:  # Pulumi's Go host, as real users run it
        assert re.fullmatch(r"3\.\d+\.\d+", host.group(1)), host.group(1)


def test_the_last_resort_language_host_still_runs_up_a_no_change_preview_and_destroy(
    tmp_path: Path, pulumi_home: Path, sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    project = FallbackHostProject.create(tmp_path / "fallback", pulumi_home)
    assert "-fallback.msk" in project.run("about").output  # really this project's host
    project.use_account(sandbox.base_url, account)
    project.set_keys([{"name": "smoke", "symbol": "BTCUSDT"}])
    project.up()
    assert [k["apiName"] for k in sandbox.special_keys(account["accountId"])] == ["smoke"]
    project.expect_no_changes()
    project.destroy()
    assert sandbox.special_keys(account["accountId"]) == []


def test_program_output_and_errors_reach_the_user(tmp_path: Path, pulumi_home: Path) -> None:
    program = NOOP_PROGRAM + '\nprint("hello from the program")\nraise ValueError("broken on purpose")\n'
    project = PulumiProject.create(tmp_path / "broken", pulumi_home, program=program)
    preview = project.preview(check=False)
    assert preview.returncode != 0
    assert "hello from the program" in preview.output and "broken on purpose" in preview.output


def test_the_engine_reads_the_secrets_the_harness_seals_as_its_own(
    tmp_path: Path, pulumi_home: Path
) -> None:
    """The harness seals test secrets in process (tests/harness.py PassphraseSecrets); the CLI
    must keep the shared salt at `stack init`, decrypt those values, and read a value it sealed
    itself on the same stack."""
    import yaml

    from tests.harness import PassphraseSecrets, same_secret

    project = PulumiProject.create(tmp_path / "sealed", pulumi_home, program=NOOP_PROGRAM)
    salt = yaml.safe_load(project.config_file().read_text())["encryptionsalt"]
    assert salt.startswith(f"v1:{base64.b64encode(PassphraseSecrets.SALT).decode()}:")
    sealed_here, sealed_by_cli = "sealed-by-the-harness-Zq81", "sealed-by-the-cli-Wx42"
    project.set_secret("binance:apiKey", sealed_here)
    project.run("config", "set", "--secret", "binance:secretKey", input=sealed_by_cli)
    config = yaml.safe_load(project.config_file().read_text())
    assert config["encryptionsalt"] == salt
    assert all(set(config["config"][k]) == {"secure"}
               for k in ("binance:apiKey", "binance:secretKey"))
    shown = project.run("config", "--json", "--show-secrets").stdout
    values = {k: v["value"] for k, v in json.loads(shown).items()}
    assert same_secret(values["binance:apiKey"], sealed_here)
    assert same_secret(values["binance:secretKey"], sealed_by_cli)
