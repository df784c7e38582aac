"""What a person reads, on the real engine: one readable error per key, honest previews, and
summaries that say which key changes."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.harness import ROOT, PulumiProject, SandboxAccount, SandboxProcess, allow_endpoint

KEYS: list[dict[str, Any]] = [
    {"name": "ed", "ipWhitelist": ["10.0.0.1"]},
    {"name": "btc", "symbol": "BTCUSDT", "ipWhitelist": ["10.0.0.1"]},
    {"name": "rsa", "keyType": "RSA", "ipWhitelist": ["10.0.0.1"]}]


def closed_port_url() -> str:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    allow_endpoint(url)  # the run vouches for it, as for a sandbox: it just does not answer
    return url


def test_a_preview_a_pull_request_summary_and_an_unreachable_exchange_each_say_plainly_what_happens(
    project: PulumiProject, sandbox: SandboxProcess, account: SandboxAccount, tmp_path: Path,
) -> None:
    keys = [{**KEYS[0], "keepers": {"v": "1"}}, *KEYS[1:]]
    project.set_keys(keys)
    project.up()
    # A no-change preview shows no change.
    diff = project.preview("--diff")
    assert "~" not in diff.stdout, diff.stdout
    assert "3 unchanged" in diff.stdout or "4 unchanged" in diff.stdout

    # A pull request's summary names the replaced key and says it brings new credentials.
    project.set_keys([{**KEYS[0], "keepers": {"v": "2"}}, {**KEYS[1], "ipWhitelist": ["10.0.0.9"]},
                      KEYS[2]])
    summary = tmp_path / "summary.md"
    run = subprocess.run(
        [sys.executable, "-m", "margin_special_keys.gitops", "preview", "--project", str(project.directory),
         "--markdown", str(summary)],
        cwd=ROOT, env=project.env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    md = summary.read_text()
    assert "| `test` | ✅ changes | 0 | 1 | 1 | 0 |" in md  # the Stack resource is not counted
    assert ("- `test` · **ed** · replace because of keepers — ⚠️ new credentials: the trading"
            " system must switch to the new key") in md
    assert "- `test` · **btc** · update (ipWhitelist)" in md
    assert f"stacks in {project.directory / 'stacks'}: test" in run.stderr

    # The exchange unreachable: one short message per key.
    project.set_keys([{**k, "ipWhitelist": ["10.0.0.2"]} for k in keys])  # three changed keys
    project.set_config("binance:baseUrl", closed_port_url())
    failed = project.up(check=False)
    output = failed.output
    assert failed.returncode != 0
    # The progress lines show each error's first line; the diagnostics hold the tracebacks.
    diagnostics = output.split("Diagnostics:", 1)[1]
    assert diagnostics.count("Traceback (most recent call last):") <= len(KEYS)
    assert "urllib3" not in output and "requests.exceptions" not in output
    assert "During handling of the above exception" not in output
    assert "signature=" not in output and "timestamp=" not in output
    assert len(output.splitlines()) < 120, output
    # Each failed key's traceback ends in our message. (Which keys fail depends on how far the
    # engine gets: the first request of the run, which account this is, may fail first.)
    blocks = diagnostics.split("Traceback (most recent call last):")[1:]
    assert 1 <= len(blocks) <= len(KEYS)
    for block in blocks:
        last = [ln for ln in block.split("\n\n", 1)[0].splitlines() if ln.strip()][-1]
        assert "NotSent: " in last and "could not connect to http://127.0.0.1" in last
        assert last.rstrip().endswith("(nothing was sent)")
