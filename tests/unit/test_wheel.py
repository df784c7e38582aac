"""What the wheel ships: the package a user runs, and nothing of the harness around it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.harness import ROOT


def test_the_wheel_ships_the_package_and_none_of_the_dev_only_code(tmp_path: Path) -> None:
    # Built from a copy of the clone, dev-only folders included: a build writes build/ and
    # *.egg-info beside its sources, and another test process may build at once.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".tools", ".git", ".state", ".sandbox", "__pycache__", "*.egg-info", "build"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-w", str(tmp_path), str(source)],
                   check=True, capture_output=True, cwd=tmp_path)
    [wheel] = tmp_path.glob("margin_special_keys-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    code = [n for n in names if not n.startswith("margin_special_keys-")]
    assert code and all(n.startswith("margin_special_keys/") for n in code), code
    assert "margin_special_keys/margin_special_key.py" in code  # the pickled path
    for module in ("gitops/__main__.py", "gitops/runner.py", "sandbox/server.py", "credentials.py"):
        assert f"margin_special_keys/{module}" in code
    shipped = "".join(zipfile.ZipFile(wheel).read(n).decode() for n in code if n.endswith(".py"))
    for dev_only in ("class PulumiProject", "def ensure_engine", "NOOP_PROGRAM", "BARE_REQUEST_PROGRAM",
                     "class SandboxProcess", "class Wire", "class PostgresServer", "setup-engine.sh"):
        assert dev_only not in shipped, dev_only
