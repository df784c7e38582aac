"""`python -m margin_special_keys.sandbox`: serve, account create and keys, as a person runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.harness import ROOT, SandboxProcess


def sandbox_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "margin_special_keys.sandbox",
                           *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_account_create_prints_credentials_of_each_key_type(tmp_path: Path) -> None:
    hmac = json.loads(sandbox_cli("account", "create", "--data-dir", str(tmp_path)).stdout)
    assert set(hmac) == {"accountId", "apiKey", "secretKey"}
    for key_type in ("RSA", "ED25519"):
        out = sandbox_cli("account", "create", "--data-dir", str(tmp_path), "--key-type", key_type)
        created = json.loads(out.stdout)
        assert set(created) == {"accountId", "apiKey", "privateKey"}
        assert created["privateKey"].startswith("-----BEGIN PRIVATE KEY-----")


def test_account_create_refuses_a_malformed_symbol(tmp_path: Path) -> None:
    out = sandbox_cli("account", "create", "--data-dir", str(tmp_path), "--isolated-symbols", "btc/usdt")
    assert out.returncode == 2 and "not a symbol" in out.stderr


def test_serve_writes_its_url_and_keys_lists_what_it_holds(tmp_path: Path) -> None:
    server = SandboxProcess(tmp_path / "d")
    try:
        assert server.base_url.startswith("http://127.0.0.1:")
        account = server.create_account("HMAC")  # works while the server runs
        keys = json.loads(sandbox_cli("keys", "--data-dir", str(tmp_path / "d")).stdout)
        assert keys == [] and account["accountId"]
    finally:
        server.stop()
    assert not (tmp_path / "d" / "url").exists()


def test_serve_binds_loopback_unless_told_otherwise(tmp_path: Path) -> None:
    out = sandbox_cli("serve", "--data-dir", str(tmp_path), "--host", "0.0.0.0")
    assert out.returncode == 2 and "loopback" in out.stderr


def test_account_create_writes_the_pem_ready_for_pulumi_config_and_sets_restrictions(
    tmp_path: Path,
) -> None:
    from margin_special_keys.sandbox.models import Exchange
    from margin_special_keys.sandbox.store import Store

    pem = tmp_path / "provider-key.pem"
    out = sandbox_cli("account", "create", "--data-dir", str(tmp_path / "d"), "--key-type", "ED25519",
                      "--pem-out", str(pem), "--restrictions", "enableSpotAndMarginTrading=false")
    created = json.loads(out.stdout)
    assert created["privateKey"] == f"written to {pem}"
    assert pem.read_text().startswith("-----BEGIN PRIVATE KEY-----\n")  # not JSON-escaped
    assert pem.stat().st_mode & 0o777 == 0o600
    exchange = Exchange(Store(tmp_path / "d"))
    with exchange.store.transaction() as tx:
        account = tx.account(created["accountId"])
    assert account is not None
    assert exchange.api_restrictions(account)["enableSpotAndMarginTrading"] is False
    assert exchange.margin_account(account)["accountType"] == "MARGIN_1"
    refused = sandbox_cli("account", "create", "--data-dir", str(tmp_path / "d"),
                          "--restrictions", "canFly=true")
    assert refused.returncode == 2 and "--restrictions takes NAME=true|false" in refused.stderr


def test_a_restart_on_the_same_data_dir_keeps_its_port(tmp_path: Path) -> None:
    first = SandboxProcess(tmp_path / "d", port=None)
    url = first.base_url
    first.stop()
    again = SandboxProcess(tmp_path / "d", port=None)
    try:
        assert again.base_url == url
    finally:
        again.stop()


def accounts_in(data_dir: Path) -> int:
    import sqlite3

    if not (data_dir / "exchange.sqlite3").exists():
        return 0
    with sqlite3.connect(data_dir / "exchange.sqlite3") as db:
        return int(db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0])


def test_pem_out_refuses_an_existing_file_without_overwrite(tmp_path: Path) -> None:
    """An existing file's mode (0644 here) would be kept by writing through it: refused, before
    any account is made, and the file is left as it was."""
    pem = tmp_path / "provider-key.pem"
    pem.write_text("someone else's file\n")
    pem.chmod(0o644)
    dangling = tmp_path / "link.pem"
    dangling.symlink_to(tmp_path / "nowhere.pem")
    for target in (pem, dangling):
        out = sandbox_cli("account", "create", "--data-dir", str(tmp_path / "d"), "--key-type",
                          "ED25519", "--pem-out", str(target))
        assert out.returncode == 2 and "--overwrite" in out.stderr and out.stdout == ""
    assert pem.read_text() == "someone else's file\n" and pem.stat().st_mode & 0o777 == 0o644
    assert not (tmp_path / "nowhere.pem").exists()
    assert accounts_in(tmp_path / "d") == 0


def test_pem_out_with_overwrite_replaces_the_file_by_a_new_0600_one(tmp_path: Path) -> None:
    pem = tmp_path / "provider-key.pem"
    pem.write_text("old\n")
    pem.chmod(0o644)
    old_inode = pem.stat().st_ino
    elsewhere = tmp_path / "elsewhere.pem"
    elsewhere.write_text("not to be touched\n")
    elsewhere.chmod(0o644)
    link = tmp_path / "link.pem"
    link.symlink_to(elsewhere)
    for target in (pem, link):
        out = sandbox_cli("account", "create", "--data-dir", str(tmp_path / "d"), "--key-type",
                          "RSA", "--pem-out", str(target), "--overwrite")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["privateKey"] == f"written to {target}"
        assert not target.is_symlink()
        assert target.read_text().startswith("-----BEGIN PRIVATE KEY-----\n")
        assert target.stat().st_mode & 0o777 == 0o600
    assert pem.stat().st_ino != old_inode  # a new file, not the old one rewritten
    assert elsewhere.read_text() == "not to be touched\n"  # the link was replaced, not followed
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert accounts_in(tmp_path / "d") == 2
