"""Proof fixtures: the real engine, fresh accounts, and a report of what each proof saw.

With PROOF_REPORT=FILE (as `make proof` sets it), each proof appends one JSON line describing
its outcome; tools/reliability_report.py turns them into docs/reliability.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import FULL_TABLES, PulumiProject, SandboxAccount, SandboxProcess, ensure_engine

# The engine-level fault table runs in `make proof` only; test_fault_matrix.py says what covers
# it in `make test`.
collect_ignore = [] if FULL_TABLES else ["test_fault_matrix.py"]


@pytest.fixture(scope="session", autouse=True)
def engine() -> Path:
    return ensure_engine()


@pytest.fixture
def account(sandbox: SandboxProcess) -> SandboxAccount:
    return sandbox.create_account("ED25519")


@pytest.fixture
def project(tmp_path: Path, pulumi_home: Path, clean_faults: SandboxProcess,
            account: SandboxAccount) -> Iterator[PulumiProject]:
    proj = PulumiProject.create(tmp_path / "project", pulumi_home)
    proj.use_account(clean_faults.base_url, account)
    yield proj


@pytest.fixture
def report() -> Callable[..., None]:
    def write(kind: str, **fields: Any) -> None:
        target = os.environ.get("PROOF_REPORT")
        if target:
            with open(target, "a") as out:
                out.write(json.dumps({"kind": kind, **fields}) + "\n")

    return write


def agreement(project: PulumiProject, sandbox: SandboxProcess, account: SandboxAccount) -> dict[str, Any]:
    """What the exchange holds against what the state records."""
    on_exchange = sorted(k["apiKey"] for k in sandbox.special_keys(account["accountId"]))
    in_state = sorted(r["id"] for r in project.resources())
    names = [k["apiName"] for k in sandbox.special_keys(account["accountId"])]
    return {
        "exchange": len(on_exchange),
        "state": len(in_state),
        "agree": on_exchange == in_state,
        "duplicates": len(names) - len(set(names)),
    }
