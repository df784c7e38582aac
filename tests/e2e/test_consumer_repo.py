"""The package as another infra repo uses it: `pulumi new` from templates/special-keys installs
it (a wheel built from this checkout) into that repo's own virtualenv; then the repo's own program
uses it next to a `providers/` package of its own. No PYTHONPATH, no sys.path edits, on the real
engine against the sandbox.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from margin_special_keys import state_format
from tests.harness import ROOT, PulumiProject, SandboxProcess


class ConsumerProject(PulumiProject):
    """A project in someone else's repository: nothing of this checkout on the import path."""

    def env(self) -> dict[str, str]:
        env = super().env()
        env.pop("PYTHONPATH", None)
        env.pop("VIRTUAL_ENV", None)
        return env


@pytest.fixture(scope="module")
def package_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """pip settings under which `margin-special-keys` resolves to a wheel built from this checkout
    and its dependencies' ranges to the versions this repository locks (the pip cache has them)."""
    wheels = tmp_path_factory.mktemp("wheels")
    # Built from a copy of what the wheel is made of: a build writes build/ and *.egg-info next to
    # its sources, and two test processes may build at once.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "providers"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(wheels), str(source)], check=True, cwd=wheels)
    constraints = wheels.parent / "constraints.txt"
    constraints.write_text("".join(
        line.split(" ")[0] + "\n" for line in (ROOT / "requirements.lock").read_text().splitlines()
        if re.match(r"^[A-Za-z0-9_.-]+==", line)))
    yield {"PIP_FIND_LINKS": " ".join(filter(None, [os.environ.get("PIP_FIND_LINKS"), str(wheels)])),
           "PIP_CONSTRAINT": str(constraints), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def provider_path(project: PulumiProject) -> set[bytes]:
    return {base64.b64decode(r["outputs"]["__provider"]) for r in project.resources()}


CONSUMER_PROGRAM = '''
"""A firm's own program, with a providers/ package of its own next to it."""
import pulumi

import margin_special_keys
import providers  # the infra repo's own folder: the package must not shadow it, nor it the package
from margin_special_keys import MarginSpecialKey

key = MarginSpecialKey("desk-a-cross", api_name="desk-a-cross", ip_whitelist=["198.51.100.7"])
pulumi.export("apiKey", key.api_key)
pulumi.export("ownProviders", providers.OWNER)
pulumi.export("packageFrom", margin_special_keys.__file__)
'''


@pytest.mark.long
def test_an_infra_repo_from_the_template_manages_its_key_then_with_its_own_program(
    tmp_path: Path, pulumi_home: Path, sandbox: SandboxProcess, package_index: dict[str, str]
) -> None:
    """`pulumi new` from templates/special-keys, then the repo grows as a firm's does: a program
    of its own next to a `providers/` package of its own, its stacks moved to deploy/stacks."""
    infra = tmp_path / "firm-infra"
    (tmp_path / "state").mkdir()
    project = ConsumerProject(infra, pulumi_home, "dev")
    env = {**project.env(), **package_index, "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}"}
    project.extra_env["PULUMI_BACKEND_URL"] = env["PULUMI_BACKEND_URL"]
    created = subprocess.run(
        ["pulumi", "new", str(ROOT / "templates" / "special-keys"), "--yes", "--non-interactive",
         "--name", "firm-infra", "--stack", "dev", "--dir", str(infra),
         "--config", f"binance:baseUrl={sandbox.base_url}"],
        env=env, capture_output=True, text=True, timeout=600)
    assert created.returncode == 0, created.stdout + created.stderr
    for path in ("Pulumi.yaml", "__main__.py", "requirements.txt", "stacks/Pulumi.dev.yaml",
                 ".github/workflows/special-keys.yml", ".gitlab-ci.yml"):
        assert (infra / path).is_file(), path
    assert "name: firm-infra" in (infra / "Pulumi.yaml").read_text()

    # What `pulumi new` installed from requirements.txt into the repo's own virtualenv: one
    # non-generic top-level name, the runtime dependencies, no dev tools.
    site = next((infra / ".venv" / "lib").glob("python3*/site-packages"))
    dist = next(site.glob("margin_special_keys-*.dist-info"))
    assert (dist / "top_level.txt").read_text().split() == ["margin_special_keys"]
    installed = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert {"pulumi", "requests", "cryptography"} <= installed
    assert not installed & {"pytest", "ruff", "mypy", "hypothesis", "binance_common", "check_jsonschema"}
    assert not (site / "providers").exists() and not (site / "gitops").exists()

    account = sandbox.create_account("ED25519")
    project.set_secret("binance:apiKey", account["apiKey"])
    project.set_secret("binance:privateKey", account["privateKey"])
    assert "PYTHONPATH" not in project.env()
    project.up()
    keys = sandbox.special_keys(account["accountId"])
    assert [(k["apiName"], k["ips"]) for k in keys] == [("cross-1", ["203.0.113.10"])]

    (infra / "providers").mkdir()
    (infra / "providers" / "__init__.py").write_text('OWNER = "firm-infra"\n')
    (infra / "__main__.py").write_text(CONSUMER_PROGRAM)
    (infra / "deploy").mkdir()
    (infra / "stacks").rename(infra / "deploy" / "stacks")
    settings = (infra / "Pulumi.yaml").read_text()
    (infra / "Pulumi.yaml").write_text(settings.replace("stackConfigDir: stacks",
                                                        "stackConfigDir: deploy/stacks"))
    assert project.config_file() == infra / "deploy" / "stacks" / "Pulumi.dev.yaml"

    project.up()
    on_exchange = sandbox.special_keys(account["accountId"])
    assert [k["apiName"] for k in on_exchange] == ["desk-a-cross"]  # cross-1 is no longer declared
    outputs = project.outputs()
    assert outputs["apiKey"] == on_exchange[0]["apiKey"] and outputs["ownProviders"] == "firm-infra"
    assert outputs["packageFrom"].startswith(str(site))  # this repo's virtualenv, not the checkout
    module = state_format.PROVIDER_MODULE.encode()
    assert all(module in blob and b"providers" not in blob for blob in provider_path(project))

    # The runner from the consuming repo: --project is the current directory, the stacks folder
    # Pulumi.yaml's stackConfigDir.
    summary = infra / "summary.json"
    run = subprocess.run([str(infra / ".venv" / "bin" / "python"), "-m", "margin_special_keys.gitops",
                          "preview", "--json", str(summary)],
                         cwd=infra, env=project.env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    report: dict[str, Any] = json.loads(summary.read_text())
    # (The runner's preview refreshes first: the key on the exchange and the state agree.)
    assert [(s["stack"], s["ok"], s["changes"]) for s in report["stacks"]] == [("dev", True, {})], report

    project.destroy()
    assert sandbox.special_keys(account["accountId"]) == []
