"""Create, update and delete through `pulumi up`, crossed with every fault the exchange can show.

After `pulumi up` (and at most one more), the exchange and the state agree, with no orphaned and
no duplicated key. `make proof` runs the whole table on the engine (docs/reliability.md).
`make test` runs the whole table at the provider level (tests/provider/test_reconciliation.py:
every fault for create (per key type), update and delete, the clock skew and the latency), where
the reconciliation lives, and on the engine one fault per operation in one run
(tests/e2e/test_rotation_and_adoption.py::test_up_through_a_faulty_exchange_agrees_with_it: a
create, an IP edit and a delete, each answered by a dropped connection after the exchange acted).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.harness import UNKNOWN_OUTCOME_FAULTS, PulumiProject, SandboxAccount, SandboxProcess
from tests.proof.conftest import agreement

KEY = "/sapi/v1/margin/apiKey"
PATHS = {"create": ("POST", KEY), "update": ("PUT", KEY + "/ip"), "delete": ("DELETE", KEY)}
FAULTS: dict[str, dict[str, Any]] = {
    **UNKNOWN_OUTCOME_FAULTS,
    "clock skew of 4 s": {"skew_ms": -4000},
    "3 s of latency": {"action": "latency", "delay_ms": 3000},
}
KEYS = [{"name": "hmac", "keyType": "HMAC", "ipWhitelist": ["10.0.0.1"]},
        {"name": "ed", "ipWhitelist": ["10.0.0.1"]}]
UPDATED = [{**k, "ipWhitelist": ["10.0.0.2"]} for k in KEYS]


def inject(sandbox: SandboxProcess, operation: str, fault: str) -> None:
    spec = dict(FAULTS[fault])
    if "skew_ms" in spec:
        sandbox.admin("POST", "clock", {"skewMs": spec["skew_ms"]})
        return
    method, path = PATHS[operation]
    sandbox.add_fault(method=method, path=path, count=2, **spec)


def up_until_done(project: PulumiProject) -> int:
    """`pulumi up`, and one more if the first failed; the number of runs it took."""
    if project.up(check=False).returncode == 0:
        return 1
    project.up()
    return 2


CELLS = [(op, fault) for op in ("create", "update", "delete") for fault in FAULTS]


@pytest.mark.parametrize(("operation", "fault"), CELLS)
def test_fault_cell(project: PulumiProject, clean_faults: SandboxProcess, account: SandboxAccount,
                    operation: str, fault: str, report: Callable[..., None]) -> None:
    sandbox = clean_faults
    project.set_keys(KEYS)
    if operation != "create":
        project.up()
        project.set_keys(UPDATED if operation == "update" else [])
    sandbox.reset_requests()
    inject(sandbox, operation, fault)
    runs = up_until_done(project)
    sandbox.clear_faults()

    seen = agreement(project, sandbox, account)
    log = sandbox.requests_log()
    assert seen["agree"] and seen["duplicates"] == 0, seen
    assert seen["exchange"] == (0 if operation == "delete" else 2), seen
    if operation == "update":
        assert {k["ip"] for k in sandbox.special_keys(account["accountId"])} == {"10.0.0.2"}
    project.expect_no_changes()
    report("fault", operation=operation, fault=fault, ups=runs, **seen,
           requests=len(log), refused=sum(1 for r in log if r["status"] != 200))
    project.destroy()
