"""The pickled provider path is the state format: a state written by 0.1.0 keeps working.

0.1.0 ran from a checkout of this repository and pickled `providers.margin_special_key`; 0.2.0 is
installed as `margin_special_keys`. From a checkout, such a state refreshes and destroys, and its
next `up` rewrites the path without a request that changes anything (docs/state-format.md).
"""

from __future__ import annotations

import base64
import shutil

import pytest

from margin_special_keys import state_format
from tests.harness import ROOT, PulumiProject, SandboxProcess

LEGACY_BLOB = (ROOT / "tests" / "fixtures" / "provider-pickle-0.1.0.b64").read_text().strip()

# The program as 0.1.0 ran it: every resource's `__provider` is the exact string 0.1.0 pickled.
LEGACY_PROGRAM = f'''
import pulumi.dynamic.dynamic as dynamic
dynamic.serialize_provider = lambda provider: {LEGACY_BLOB!r}
from margin_special_keys.program import main
main()
'''


def pickled_paths(project: PulumiProject) -> dict[str, tuple[bytes, bytes]]:
    """Key name -> the pickled provider in its inputs and in its outputs."""
    return {
        r["urn"].rsplit("::", 1)[-1]: (base64.b64decode(r["inputs"]["__provider"]),
                                       base64.b64decode(r["outputs"]["__provider"]))
        for r in project.resources()
    }


@pytest.mark.long
def test_a_state_written_by_0_1_0_refreshes_destroys_and_is_rewritten_by_the_next_up(
    project: PulumiProject, sandbox: SandboxProcess, account: dict[str, str]
) -> None:
    checkout = project.directory / "providers"  # 0.1.0 ran in a checkout of this repository
    checkout.symlink_to(ROOT / "providers")
    project.set_keys([{"name": "old-a"}, {"name": "old-b", "symbol": "BTCUSDT"}])
    (project.directory / "__main__.py").write_text(LEGACY_PROGRAM)
    project.up()
    legacy = base64.b64decode(LEGACY_BLOB)
    assert set(pickled_paths(project).values()) == {(legacy, legacy)}
    shutil.copy(ROOT / "__main__.py", project.directory / "__main__.py")  # 0.2.0's program

    # Outside a checkout, nothing provides the old path: the control for what follows.
    checkout.unlink()
    outside = project.run("refresh", "--yes", "--skip-preview", check=False)
    assert outside.returncode != 0 and "No module named 'providers'" in outside.output

    checkout.symlink_to(ROOT / "providers")
    project.refresh()
    assert len(sandbox.special_keys(account["accountId"])) == 2
    old_a = next(r["urn"] for r in project.resources() if r["urn"].endswith("::old-a"))
    project.run("destroy", "--yes", "--skip-preview", "--target", old_a)
    assert [k["apiName"] for k in sandbox.special_keys(account["accountId"])] == ["old-b"]

    project.set_keys([{"name": "old-b", "symbol": "BTCUSDT"}])
    assert project.planned_ops()["old-b"] == ["update"]
    sandbox.reset_requests()
    project.up()
    assert sandbox.mutations() == []  # the path moved; the exchange was not touched
    current = pickled_paths(project)["old-b"]
    module = state_format.PROVIDER_MODULE.encode()
    assert module in current[0] and module in current[1] and b"providers" not in current[1]
    project.expect_no_changes()

    checkout.unlink()  # the rewritten state needs no checkout
    project.destroy()
    assert sandbox.special_keys(account["accountId"]) == []
