"""End-to-end fixtures: the real engine, and a project bound to a fresh sandbox account."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import PulumiProject, SandboxAccount, SandboxProcess, ensure_engine


@pytest.fixture(scope="session", autouse=True)
def engine() -> Path:
    return ensure_engine()


@pytest.fixture
def account(sandbox: SandboxProcess) -> SandboxAccount:
    return sandbox.create_account(key_type="ED25519")


@pytest.fixture
def project(
    tmp_path: Path, pulumi_home: Path, sandbox: SandboxProcess, account: dict[str, str]
) -> Iterator[PulumiProject]:
    proj = PulumiProject.create(tmp_path / "project", pulumi_home)
    proj.use_account(sandbox.base_url, account)
    yield proj
