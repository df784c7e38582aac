"""tools/setup-engine.sh keeps a user on the official Pulumi install they have, run after run,
with no Go on the machine; and says what to do when there is neither."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.harness import ROOT

STUB = "#!/bin/sh\n[ \"$1\" = version ] && echo v3.274.1\nexit 0\n"


def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A checkout with only what the script reads, and an official install's bin folder."""
    checkout = tmp_path / "checkout"
    (checkout / "tools" / "pulumi").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "setup-engine.sh", checkout / "tools")
    shutil.copy(ROOT / "tools" / "pulumi" / "language_host.py", checkout / "tools" / "pulumi")
    official = tmp_path / "pulumi-official" / "bin"
    official.mkdir(parents=True)
    for name in ("pulumi", "pulumi-language-python", "pulumi-language-python-exec",
                 "pulumi-resource-pulumi-python"):
        (official / name).write_text(STUB)
        (official / name).chmod(0o755)
    return checkout, official


def setup(checkout: Path, *path: Path) -> subprocess.CompletedProcess[str]:
    # As `make` runs it: the project's .tools/bin first on PATH; no Go anywhere on it.
    bins = [checkout / ".tools" / "bin", *path, Path("/usr/bin"), Path("/bin")]
    assert not any((b / "go").exists() for b in bins)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env["PATH"] = os.pathsep.join(map(str, bins))
    return subprocess.run(["bash", str(checkout / "tools" / "setup-engine.sh")], env=env,
                          capture_output=True, text=True, timeout=60)


def test_an_official_install_is_used_again_and_again_without_go(tmp_path: Path) -> None:
    checkout, official = layout(tmp_path)
    for _ in range(3):
        run = setup(checkout, official)
        assert run.returncode == 0, run.stderr
        assert (checkout / ".tools" / "bin" / "pulumi").resolve() == official / "pulumi"
        assert (checkout / ".tools" / "bin" / "pulumi-language-python").resolve() == \
            official / "pulumi-language-python"
        assert "official install" in (checkout / ".tools" / "language-host").read_text()
    # Even once the official install is no longer on PATH, the link an earlier run made holds.
    run = setup(checkout)
    assert run.returncode == 0, run.stderr
    assert (checkout / ".tools" / "bin" / "pulumi").resolve() == official / "pulumi"


def test_neither_an_official_install_nor_go_says_what_to_install(tmp_path: Path) -> None:
    checkout, _ = layout(tmp_path)
    run = setup(checkout)
    assert run.returncode == 127
    assert "Install Pulumi (https://www.pulumi.com/docs/install/) or Go" in run.stderr
