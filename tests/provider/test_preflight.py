"""The read-only preflight against the sandbox: every row, ok and fail, nothing written to the
account, nothing secret written to disk."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from margin_special_keys.gitops.preflight import FAIL, OK, Recorder, Row, run_preflight
from margin_special_keys.settings import make_client, read_settings
from tests.harness import SandboxAccount, SandboxProcess

DECLARED = [("desk", None, False), ("btc", "BTCUSDT", False)]


def client_for(sandbox: SandboxProcess, account: dict[str, str], observer: Any = None) -> Any:
    config = {"binance:apiKey": account["apiKey"], "binance:baseUrl": sandbox.base_url}
    config.update({"binance:privateKey": account["privateKey"]} if "privateKey" in account
                  else {"binance:secretKey": account["secretKey"]})
    return make_client(read_settings(config.get, os.environ), observer)


def rows_of(sandbox: SandboxProcess, account: dict[str, str],
            declared: list[tuple[str, str | None, bool]] = DECLARED) -> dict[str, Row]:
    rows = run_preflight(client_for(sandbox, account), other_api_keys=1, recv_window_ms=5000,
                         declared=declared)
    return {row.check: row for row in rows}


@pytest.fixture
def fresh(clean_faults: SandboxProcess) -> Iterator[SandboxProcess]:
    clean_faults.reset_requests()
    yield clean_faults
    clean_faults.admin("POST", "clock", {"skewMs": 0})


def test_a_ready_account_is_all_ok_and_only_read(fresh: SandboxProcess, account: SandboxAccount) -> None:
    rows = rows_of(fresh, account)
    assert {check: row.status for check, row in rows.items()} == {
        "clock": OK, "signed request": OK, "key permissions": OK, "key IP restriction": OK,
        "key withdrawals": OK, "margin account": OK, "pair BTCUSDT": OK, "room": OK}
    assert "room for 29 of the 2 new key(s)" in rows["room"].detail
    assert {r["method"] for r in fresh.requests_log()} == {"GET"}  # nothing written


def test_each_failing_condition_is_reported_with_its_fix(fresh: SandboxProcess, sandbox: SandboxProcess,
                                                         account: SandboxAccount) -> None:
    fresh.admin("POST", f"accounts/{account['accountId']}",
                {"restrictions": {"enableSpotAndMarginTrading": False, "ipRestrict": False}})
    rows = rows_of(fresh, account, [*DECLARED, ("sol", "SOLUSDT", False)])
    permissions = rows["key permissions"]
    assert permissions.status == FAIL and "Enable Spot & Margin Trading" in permissions.fix
    assert rows["key IP restriction"].status == "warn"
    assert rows["pair SOLUSDT"].status == FAIL and "Isolated Margin" in rows["pair SOLUSDT"].fix

    script = sandbox.script_client(account)
    for i in range(28):
        script.create_special_key(f"other-{i}", None, [], None, None)
    fresh.reset_requests()
    rows = rows_of(fresh, account)
    assert rows["room"].status == FAIL and "room for 1 of the 2 new key(s)" in rows["room"].detail

    fresh.admin("POST", "clock", {"skewMs": 10_000})
    rows = rows_of(fresh, account)
    assert rows["clock"].status == FAIL and "NTP" in rows["clock"].fix
    assert {r["method"] for r in fresh.requests_log()} == {"GET"}


def test_wrong_key_type_and_existing_names(fresh: SandboxProcess, sandbox: SandboxProcess,
                                           account: SandboxAccount) -> None:
    rsa_account = sandbox.create_account("RSA")
    wrong = {**account, "privateKey": rsa_account["privateKey"]}  # an RSA key for an Ed25519 key
    rows = rows_of(fresh, wrong)
    assert rows["signed request"].status == FAIL and "same key type" in rows["signed request"].fix

    theirs = sandbox.script_client(account).create_special_key("desk", None, [], None, None)
    rows = rows_of(fresh, account)
    existing = rows["name 'desk'"]
    assert existing.status == "warn" and f"adoptApiKey: {theirs.api_key}" in existing.fix
    pm = sandbox.create_account("ED25519", account_type="PORTFOLIO_MARGIN")
    assert rows_of(fresh, pm)["margin account"].status == FAIL


def test_a_recording_holds_every_answer_and_nothing_secret(
    fresh: SandboxProcess, sandbox: SandboxProcess, account: SandboxAccount, tmp_path: Path,
) -> None:
    made = sandbox.script_client(account).create_special_key("recorded", "BTCUSDT", ["10.0.0.1"],
                                                             None, None)
    assert made.secret_key is not None
    recorder = Recorder(tmp_path / "rec", [account["apiKey"], account["privateKey"]])
    run_preflight(client_for(sandbox, account, recorder), other_api_keys=1, recv_window_ms=5000,
                  declared=DECLARED)
    files = sorted((tmp_path / "rec").glob("*.json"))
    endpoints = {json.loads(f.read_text())["endpoint"].split("?")[0] for f in files}
    assert endpoints >= {"GET /api/v3/time", "GET /sapi/v1/margin/api-key-list",
                         "GET /sapi/v1/account/apiRestrictions", "GET /sapi/v1/margin/account",
                         "GET /sapi/v1/margin/isolated/account"}
    raw = b"".join(f.read_bytes() for f in files)
    for secret in (account["apiKey"], made.api_key, made.secret_key, "signature", "timestamp"):
        assert secret.encode() not in raw
    for line in account["privateKey"].splitlines():
        if "-----" not in line:
            assert line.encode() not in raw
    assert all(f.stat().st_mode & 0o077 == 0 for f in files)
    assert b"REDACTEDKEY" in raw


def test_every_check_the_docs_name_is_a_row_the_preflight_prints(
        fresh: SandboxProcess, account: SandboxAccount) -> None:
    import re

    from margin_special_keys.gitops.preflight import CHECKS
    from tests.harness import ROOT

    docs = (ROOT / "docs" / "operations.md").read_text()
    block = docs.split("<!-- preflight:start -->", 1)[1].split("<!-- preflight:end -->", 1)[0]
    documented = [re.sub(r" <[^>]+>$", "", m) for m in re.findall(r"^\s*- `([^`]+)`:", block, re.M)]
    assert documented == list(CHECKS)
    fresh.script_client(account).create_special_key("desk", None, ["10.0.0.1"], None, None)
    printed = [row.check.split(" ")[0] if row.check.startswith(("pair ", "name ")) else row.check
               for row in rows_of(fresh, account).values()]
    assert printed == list(CHECKS)  # every row, in the documented order, withdrawals included
