"""`python -m tools.capture`: the output the docs show, from one real run on the sandbox.

Nothing in docs/captured/ is written by hand. This starts a sandbox exchange of its own and a
throw-away project (this repository's program, the demo's stack name `sandbox-demo`, its three
keys from tools/demo.py, a file backend in a temporary folder), runs on the real engine what the
docs show, and writes each output to docs/captured/, with the parts that change from run to run
(ports, apiKeys, durations, offsets, paths, line numbers) replaced by placeholders:

    preflight.md        `python -m margin_special_keys.gitops preflight --stacks sandbox-demo`
    demo-up.txt         `pulumi up --yes`, as `make demo` runs it
    preview-change.txt  `pulumi preview` after a rotation (keepers) and an IP edit
    pr-summary.md       `python -m margin_special_keys.gitops preview --markdown summary.md`
    unreachable.txt     `pulumi up` with the exchange unreachable (the Diagnostics part)

tests/e2e/test_captured_output.py runs the same scenario and fails when what the engine prints
no longer has the structure of these files (tests/unit/test_docs.py checks the docs quote them).

    .venv/bin/python -m tools.capture [--out DIR]     # default: docs/captured
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devtools.engine import PulumiProject  # noqa: E402
from devtools.sandbox import SandboxProcess  # noqa: E402
from margin_special_keys.settings import ALLOW_BASE_URL_ENV  # noqa: E402
from tools.demo import DEMO_KEYS, STACK  # noqa: E402

CAPTURED = ROOT / "docs" / "captured"
FILES = ("preflight.md", "demo-up.txt", "preview-change.txt", "pr-summary.md", "unreachable.txt")

# The change the preview and the pull-request summary show: a rotation of the cross margin key
# (its keepers) and an IP edit of the RSA key.
CHANGED_KEYS = [
    {**DEMO_KEYS[0], "keepers": {"rotation": "2026-12"}},
    {**DEMO_KEYS[1], "ipWhitelist": ["203.0.113.10", "203.0.113.20"]},
    DEMO_KEYS[2],
]


def normalize(text: str) -> str:
    """What changes from run to run, replaced by placeholders; progress-only lines dropped."""
    text = re.sub(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:PORT", text)
    text = re.sub(r"\b[A-Za-z0-9]{64}\b", "<apiKey>", text)
    text = re.sub(r"apiKey [A-Za-z0-9]{8}…", "apiKey <apiKey>…", text)
    text = re.sub(r"\(\d+(?:\.\d+)?m?s\)", "(…s)", text)  # a step's duration
    text = re.sub(r"^Duration: .*$", "Duration: …", text, flags=re.M)
    text = re.sub(r"\| \d+(?:\.\d+)?s \|$", "| …s |", text, flags=re.M)  # the summary's column
    text = re.sub(r"offset [+-]\d+ ms", "offset ±… ms", text)
    text = re.sub(r'File "[^"]*/site-packages/', 'File "…/site-packages/', text)
    text = re.sub(r'File "[^"]*/providers/', 'File "…/providers/', text)
    text = re.sub(r", line \d+, in ", ", line …, in ", text)
    lines = [line.rstrip() for line in text.splitlines() if not line.startswith("@ ")]
    # A summary lists the keys that change in the order the engine reported them: sorted here.
    bullets = sorted(line for line in lines if line.startswith("- `"))
    lines = [bullets.pop(0) if line.startswith("- `") else line for line in lines]
    return "\n".join(lines).strip("\n") + "\n"


RESOURCE_ROW = re.compile(
    r"^ *(?P<op>\+\+|\+-|--|\+|~|-)? +(?P<type>pulumi(?:-python)?:\S+) (?P<name>\S+)(?: (?P<verb>[a-z]+))?")


def structure(name: str, text: str) -> dict[str, list[str]]:
    """What must stay as the docs show it, whatever the engine's timing: for Markdown, its lines
    (the order of keys may vary); for the engine's output, the resource rows (operation, name and
    what happens to it) and every other line, each as a set; for the unreachable exchange, the
    lines of its tracebacks (which keys fail first depends on timing)."""
    lines = [line for line in normalize(text).splitlines() if line.strip()]
    if name.endswith(".md"):
        return {"lines": sorted(set(lines))}
    rows, other = set(), set()
    for line in lines:
        match = RESOURCE_ROW.match(line)
        if match and not line.startswith("  pulumi-python:dynamic"):
            rows.add(f"{match['op'] or ' '} {match['name']} {match['verb'] or ''}".rstrip())
        elif not line.startswith("  pulumi-python:dynamic"):  # a diagnostics block's header
            other.add(line.strip())
    if name == "unreachable.txt":
        frames = ("Traceback", "File ", "raise ", "margin_special_keys.")
        return {"traceback": sorted(line for line in other if line.startswith(frames))}
    return {"rows": sorted(rows), "lines": sorted(other)}


def _closed_port_url() -> str:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{closed.getsockname()[1]}"


def run_scenario(workdir: Path, pulumi_home: Path = ROOT / ".tools" / "pulumi-home") -> dict[str, str]:
    """The scenario on a sandbox and a project of its own under `workdir`; raw outputs by file."""
    sandbox = SandboxProcess(workdir / "sandbox")
    unreachable = _closed_port_url()
    try:
        project = PulumiProject.create(workdir / "project", pulumi_home, stack=STACK)
        # The run vouches for both endpoints, as a sandbox pipeline does: stack config never can.
        project.extra_env[ALLOW_BASE_URL_ENV] = f"{sandbox.base_url},{unreachable}"
        account = sandbox.create_account("ED25519")
        project.use_account(sandbox.base_url, account)
        project.set_keys(DEMO_KEYS)
        out: dict[str, str] = {}

        def runner(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "margin_special_keys.gitops", *args],
                                  cwd=project.directory, env=project.env(), capture_output=True,
                                  text=True, timeout=300)

        preflight = runner("preflight", "--stacks", STACK)
        assert preflight.returncode == 0, preflight.stdout + preflight.stderr
        out["preflight.md"] = preflight.stdout
        out["demo-up.txt"] = project.run("up", "--yes").stdout
        project.set_keys(CHANGED_KEYS)
        out["preview-change.txt"] = project.run("preview").stdout
        summary = workdir / "summary.md"
        previewed = runner("preview", "--markdown", str(summary))
        assert previewed.returncode == 0, previewed.stdout + previewed.stderr
        out["pr-summary.md"] = summary.read_text()

        project.set_config("binance:baseUrl", unreachable)
        failed = project.run("up", "--yes", "--skip-preview", check=False)
        assert failed.returncode != 0 and "Diagnostics:" in failed.stdout, failed.output
        out["unreachable.txt"] = "Diagnostics:" + failed.stdout.split("Diagnostics:", 1)[1].split(
            "\nOutputs:", 1)[0].split("\nResources:", 1)[0]

        # The fixed URL reaches the provider only through the program (as after any fix of it).
        project.set_config("binance:baseUrl", sandbox.base_url)
        project.run("destroy", "--yes", "--skip-preview", "--run-program")
        return out
    finally:
        sandbox.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.capture", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(CAPTURED), help="where to write (default: docs/captured)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="msk-capture-") as workdir:
        for name, text in run_scenario(Path(workdir)).items():
            (out / name).write_text(normalize(text))
            print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
