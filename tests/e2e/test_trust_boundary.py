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


def preview_run(project: PulumiProject) -> tuple[str, str]:
    """The runner's preview: the pull-request summary it writes, and everything it printed."""
    summary = project.directory / "summary.md"
    summary.unlink(missing_ok=True)
    run = subprocess.run([sys.executable, "-m", "margin_special_keys.gitops",
                          "preview", "--project", str(project.directory),
                          "--markdown", str(summary)],
                         cwd=ROOT, env=project.env(), capture_output=True, text=True, timeout=300)
    return summary.read_text() if summary.exists() else "", run.stdout + run.stderr


def preview_summary(project: PulumiProject) -> str:
    return preview_run(project)[0]


class InternalService:
    """A service on the runner's loopback that is not Binance (a secrets store, a metadata
    endpoint): it answers everything 403 with a body that must never leave the machine, and
    notes every request's X-MBX-APIKEY."""

    BODY = b'{"error":"forbidden","internal_token":"INTERNAL-ONLY-7f3a9c"}'

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        seen = self.seen = []  # type: list[str]

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                seen.append(self.headers.get("X-MBX-APIKEY") or "")
                self.send_response(403)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(InternalService.BODY)))
                self.end_headers()
                self.wfile.write(InternalService.BODY)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


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
    temp = repo.parent / "runner-temp"  # the job's RUNNER_TEMP
    temp.mkdir(exist_ok=True)
    subprocess.run(["bash", "-ec", script], cwd=repo, check=True,
                   env={"HEAD": head, "PATH": "/usr/bin:/bin", "RUNNER_TEMP": str(temp)})
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
    assert "is not one of Binance's documented API endpoints" in refused.output
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


def test_a_stacks_only_pull_request_cannot_aim_the_preview_at_another_service(
    project: PulumiProject, sandbox: SandboxProcess, account: SandboxAccount,
) -> None:
    service = InternalService()
    try:
        project.set_keys([{"name": "desk"}])
        # The pull request changes only its stack file: a loopback service, with and without a path.
        for url in (f"{service.url}/v1/secret/data/prod", service.url):
            project.set_config("binance:baseUrl", url)
            summary, printed = preview_run(project)
            assert "not one of Binance" in summary and "BINANCE\\_ALLOW\\_BASE\\_URL" in summary
            assert service.seen == []  # no request, no provider key, no signature reached it
        # A longer signature lifetime, asked for by the stack file alone: refused.
        project.set_config("binance:baseUrl", sandbox.base_url)
        project.set_config("binance:recvWindow", "60000")
        summary, _ = preview_run(project)
        assert "above 5000 ms" in summary and "BINANCE\\_MAX\\_RECV\\_WINDOW" in summary
        project.set_config("binance:recvWindow", "5000")

        # A stack file that changes how its secrets are decrypted (a key service of the PR's
        # choosing, which the CLI would call, and whose answer would come back): refused against
        # the default branch's copy, before any engine runs.
        import shutil

        trusted = project.directory / "trusted-stacks"
        shutil.copytree(project.directory / "stacks", trusted)
        stack_file = project.config_file()
        original = stack_file.read_text()
        stack_file.write_text(original + "secretsprovider: awskms://alias/x?region=us-east-1"
                              f"&anonymous=true&endpoint={service.url}\nencryptedkey: QUFBQQ==\n")
        project.extra_env["MARGIN_SPECIAL_KEYS_TRUSTED_STACKS"] = str(trusted)
        summary, printed = preview_run(project)
        assert "how a stack's secrets are decrypted is never changed" in printed
        assert service.seen == [] and "INTERNAL-ONLY" not in summary + printed
        stack_file.write_text(original)
        del project.extra_env["MARGIN_SPECIAL_KEYS_TRUSTED_STACKS"]

        # Even an endpoint the run's environment vouches for (a relay) is heard by its code
        # alone: its bytes reach neither the engine's messages nor the pull-request summary.
        project.extra_env["BINANCE_ALLOW_BASE_URL"] = service.url
        project.set_config("binance:baseUrl", service.url)
        summary, printed = preview_run(project)
        assert service.seen and "HTTP 403" in summary
        assert "INTERNAL-ONLY" not in summary + printed and "internal_token" not in summary + printed
    finally:
        service.close()
