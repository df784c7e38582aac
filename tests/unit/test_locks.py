"""The project's own installs are hash-locked, and the locks agree with what pyproject.toml pins."""

from __future__ import annotations

import re
import tomllib

from tests.harness import ROOT


def locked(name: str) -> dict[str, tuple[str, int]]:
    """package -> (version, number of hashes) in a lock file."""
    out: dict[str, tuple[str, int]] = {}
    current = None
    for line in (ROOT / name).read_text().splitlines():
        if m := re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line):
            current = m.group(1).lower().replace("_", "-")
            out[current] = (m.group(2), 0)
        elif current and "--hash=sha256:" in line:
            version, hashes = out[current]
            out[current] = (version, hashes + 1)
    return out


def test_every_pinned_requirement_is_locked_with_hashes_and_pip_is_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dev = locked("requirements-dev.lock")
    runtime = locked("requirements.lock")
    for requirement in project["dependencies"] + project["optional-dependencies"]["dev"]:
        name, version = requirement.split("==")
        assert dev[name.lower()][0] == version, requirement
    for requirement in project["dependencies"]:
        name, version = requirement.split("==")
        assert runtime[name.lower()][0] == version, requirement
    assert "pip" in dev and "setuptools" in dev
    assert all(hashes > 0 for _, hashes in [*dev.values(), *runtime.values()])
    assert "--find-links" not in (ROOT / "requirements.lock").read_text()
