"""The project's own installs are hash-locked; the package itself asks for ranges that admit them."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement

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


def pins(name: str) -> dict[str, str]:
    """package -> version of every `name==version` line of a requirements *.in file."""
    return {m.group(1).lower(): m.group(2) for line in (ROOT / name).read_text().splitlines()
            if (m := re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line))}


def test_every_pinned_requirement_is_locked_with_hashes_and_pip_is_pinned() -> None:
    dev = locked("requirements-dev.lock")
    runtime = locked("requirements.lock")
    for name, version in pins("requirements-dev.in").items():
        assert dev[name][0] == version, name
    for name, version in pins("requirements.in").items():
        assert runtime[name][0] == version == dev[name][0], name
    assert "pip" in dev and "setuptools" in dev
    assert all(hashes > 0 for _, hashes in [*dev.values(), *runtime.values()])
    assert "--find-links" not in (ROOT / "requirements.lock").read_text()


def test_the_package_asks_for_ranges_that_admit_the_locked_versions() -> None:
    """A consuming repo resolves ranges with its own pins; this repository tests the locked ones."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = locked("requirements.lock")
    names = set()
    for line in project["dependencies"]:
        requirement = Requirement(line)
        names.add(requirement.name.lower())
        assert "==" not in str(requirement.specifier) and "<" in str(requirement.specifier), line
        assert requirement.specifier.contains(runtime[requirement.name.lower()][0]), line
    assert names == {"pulumi", "requests", "cryptography"}
    assert names == set(pins("requirements.in"))
