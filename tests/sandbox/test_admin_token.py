"""The admin interface fails closed: a missing or empty admin token refuses every admin call, and
the token is made atomically, mode 0600, so a killed `serve` or a full disk cannot leave it empty."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.harness import ROOT, SandboxProcess


@pytest.fixture
def own_sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    """A sandbox of this test's own: these tests take its token away."""
    process = SandboxProcess(tmp_path / "d")
    yield process
    process.stop()


def admin_get(sandbox: SandboxProcess, token: str) -> requests.Response:
    return requests.get(f"{sandbox.base_url}/admin/state", timeout=5,
                        headers={"X-Sandbox-Admin-Token": token})


def test_a_normal_start_makes_a_0600_token_that_works(own_sandbox: SandboxProcess) -> None:
    token_file = own_sandbox.data_dir / "admin-token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    assert len(token) == 32
    assert admin_get(own_sandbox, token).status_code == 200
    assert admin_get(own_sandbox, "0" * 32).status_code == 403
    assert [p.name for p in own_sandbox.data_dir.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("how", ["emptied", "deleted"])
def test_an_empty_or_missing_token_refuses_every_admin_call(
    own_sandbox: SandboxProcess, how: str
) -> None:
    token_file = own_sandbox.data_dir / "admin-token"
    old = token_file.read_text().strip()
    if how == "emptied":
        token_file.write_text("")
    else:
        token_file.unlink()
    for token in (old, ""):
        refused = admin_get(own_sandbox, token)
        assert refused.status_code == 403
        assert "missing or empty" in refused.json()["msg"]
    made = requests.post(f"{own_sandbox.base_url}/admin/accounts", json={}, timeout=5)
    assert made.status_code == 403
    # The exchange itself still answers; only its administration is shut.
    assert requests.get(f"{own_sandbox.base_url}/api/v3/time", timeout=5).status_code == 200


def test_a_start_on_an_empty_token_file_makes_a_new_token(tmp_path: Path) -> None:
    """What a serve killed between touch and write used to leave behind."""
    data_dir = tmp_path / "d"
    data_dir.mkdir(mode=0o700)
    (data_dir / "admin-token").write_text("\n")
    (data_dir / "admin-token").chmod(0o644)
    process = SandboxProcess(data_dir)
    try:
        token_file = data_dir / "admin-token"
        token = token_file.read_text().strip()
        assert token and token_file.stat().st_mode & 0o777 == 0o600
        assert admin_get(process, token).status_code == 200
    finally:
        process.stop()
    again = SandboxProcess(data_dir)
    try:
        assert (data_dir / "admin-token").read_text().strip() == token  # kept across restarts
    finally:
        again.stop()


def test_serve_refuses_to_start_without_a_token_it_can_write(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    (data_dir / "admin-token").mkdir(parents=True)  # not a file: no token can be written there
    out = subprocess.run([sys.executable, "-m", "margin_special_keys.sandbox", "serve",
                          "--data-dir", str(data_dir), "--port", "0"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "cannot write the admin token" in out.stderr
    assert not (data_dir / "url").exists()
