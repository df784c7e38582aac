"""Trust boundaries on the real engine: a pull request's code, a lookalike endpoint, a changed
provider, none gets what it must not."""

from __future__ import annotations

import base64
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from tests.harness import ROOT, PulumiProject, SandboxAccount, SandboxProcess

MALICIOUS_PROGRAM = textwrap.dedent("""
    import base64, os
    import pulumi
    secret = (pulumi.runtime.get_config("binance:privateKey") or "") + os.environ.get(
        "PULUMI_CONFIG_PASSPHRASE", "")
    raise Exception("LEAK-" + base64.b64encode(secret.encode()).decode())
""")


def git(directory: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=directory, check=True, capture_output=True,
                          text=True).stdout.strip()


def preview_summary(project: PulumiProject) -> str:
    summary = project.directory / "summary.md"
    summary.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "margin_special_keys.gitops",
                    "preview", "--project", str(project.directory),
                    "--markdown", str(summary)],
                   cwd=ROOT, env=project.env(), capture_output=True, text=True, timeout=300)
    return summary.read_text()


def workflow_step(name: str) -> dict[str, Any]:
    flow = yaml.safe_load((ROOT / "examples" / "github-actions.yml").read_text())
    return next(s for s in flow["jobs"]["preview"]["steps"] if s.get("name") == name)


def test_a_pull_requests_code_never_runs_with_the_secrets(
    project: PulumiProject, sandbox: SandboxProcess, account: SandboxAccount,
) -> None:
    repo = project.directory
    project.set_keys([{"name": "desk"}])
    for args in (("init", "-q"), ("config", "user.email", "ci@example.invalid"),
                 ("config", "user.name", "ci"), ("add", "Pulumi.yaml", "__main__.py", "stacks"),
                 ("commit", "-qm", "base: trusted code")):
        git(repo, *args)
    base = git(repo, "rev-parse", "HEAD")
    # The pull request: a stack change, and four lines in the program that leak the secrets.
    project.set_keys([{"name": "desk"}, {"name": "desk-2"}])
    (repo / "__main__.py").write_text(MALICIOUS_PROGRAM)
    git(repo, "commit", "-qam", "pr: one more key (and a malicious program)")
    head = git(repo, "rev-parse", "HEAD")
    leaked = base64.b64encode((account["privateKey"] + project.passphrase).encode()).decode()

    # As the example pipeline does it: the base's code, then only stacks/ from the pull request.
    git(repo, "checkout", "-q", base)
    step = workflow_step("Take only stacks/ from the pull request")
    script = step["run"].replace('git fetch --no-tags --depth=1 origin "$HEAD"\n', "")
    subprocess.run(["bash", "-ec", script], cwd=repo, env={"HEAD": head, "PATH": "/usr/bin:/bin"},
                   check=True)
    assert "desk-2" in (repo / "stacks" / "Pulumi.test.yaml").read_text()  # the PR's config...
    assert "LEAK" not in (repo / "__main__.py").read_text()  # ...and the base's code
    summary = preview_summary(project)
    assert "desk-2" in summary and "create" in summary
    assert leaked not in summary and "LEAK" not in summary

    # The control: running the pull request's own code, as the old pipeline did, leaks.
    git(repo, "checkout", "-q", "--force", head)
    assert "LEAK-" in preview_summary(project)


def test_a_lookalike_endpoint_is_refused_before_any_request(
    project: PulumiProject, sandbox: SandboxProcess,
) -> None:
    project.set_keys([{"name": "desk"}])
    sandbox.reset_requests()
    project.set_config("binance:baseUrl", "https://api.binance.com.evil.example")
    refused = project.preview(check=False)
    assert refused.returncode != 0
    assert "is not one of Binance's documented API hosts" in refused.output
    assert sandbox.requests_log() == []


def test_a_change_of_provider_settings_never_reads_as_no_changes(
    project: PulumiProject, sandbox: SandboxProcess, account: SandboxAccount,
) -> None:
    project.set_keys([{"name": "desk"}, {"name": "btc", "symbol": "BTCUSDT"}])
    project.up()  # (an up converges: every lifecycle test ends on a no-change preview)
    # The same exchange under another name (localhost): another endpoint all the same.
    project.set_config("binance:baseUrl", sandbox.base_url.replace("127.0.0.1", "localhost"))
    planned = {k: v for k, v in project.planned_ops().items() if k in ("desk", "btc")}
    assert planned == {"desk": ["update"], "btc": ["update"]}
    project.up()
    project.expect_no_changes()
