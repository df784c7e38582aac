"""Fault rules, the skewed clock and the request log."""

from __future__ import annotations

import time

import pytest
import requests

from tests.harness import SandboxProcess
from tests.sandbox.conftest import Wire, error_code

KEY = "/sapi/v1/margin/apiKey"
LIST = "/sapi/v1/margin/api-key-list"


@pytest.fixture
def faulty(clean_faults: SandboxProcess) -> tuple[SandboxProcess, Wire]:
    return clean_faults, Wire(clean_faults.base_url, clean_faults.create_account("HMAC"))


def names(sandbox: SandboxProcess, wire: Wire) -> list[str]:
    return [k["apiName"] for k in sandbox.special_keys(wire.account["accountId"])]


def test_error_rule_answers_without_acting_for_its_count(faulty: tuple[SandboxProcess, Wire]) -> None:
    sandbox, wire = faulty
    sandbox.add_fault(action="error", method="POST", path=KEY, status=503, code=-1001,
                      msg="Internal error; unable to process your request.", count=1)
    first = wire.send("POST", KEY, body_params={"apiName": "a"})
    assert (first.status_code, error_code(first)) == (503, -1001)
    assert names(sandbox, wire) == []
    assert wire.send("POST", KEY, body_params={"apiName": "a"}).status_code == 200
    assert names(sandbox, wire) == ["a"]


def test_error_after_acts_then_answers_5xx(faulty: tuple[SandboxProcess, Wire]) -> None:
    sandbox, wire = faulty
    sandbox.add_fault(action="error_after", method="POST", path=KEY, status=500, count=1)
    assert wire.send("POST", KEY, body_params={"apiName": "b"}).status_code == 500
    assert names(sandbox, wire) == ["b"]


def test_drop_after_acts_then_closes_the_connection(faulty: tuple[SandboxProcess, Wire]) -> None:
    sandbox, wire = faulty
    sandbox.add_fault(action="drop_after", method="POST", path=KEY, count=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        wire.send("POST", KEY, body_params={"apiName": "c"})
    assert names(sandbox, wire) == ["c"]


def test_drop_before_does_not_act(faulty: tuple[SandboxProcess, Wire]) -> None:
    sandbox, wire = faulty
    sandbox.add_fault(action="drop_before", method="POST", path=KEY, count=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        wire.send("POST", KEY, body_params={"apiName": "d"})
    assert names(sandbox, wire) == []


def test_429_rule_carries_retry_after(faulty: tuple[SandboxProcess, Wire]) -> None:
    sandbox, wire = faulty
    sandbox.add_fault(action="error", path=LIST, status=429, code=-1003, msg="Too many requests.",
                      retry_after=2, count=1)
    refused = wire.send("GET", LIST)
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "2")


def test_latency_rule_delays_the_answer(faulty: tuple[SandboxProcess, Wire]) -> None:
    sandbox, wire = faulty
    sandbox.add_fault(action="latency", path=LIST, delay_ms=300, count=1)
    start = time.monotonic()
    assert wire.send("GET", LIST).status_code == 200
    assert time.monotonic() - start >= 0.3


def test_latency_after_acts_then_delays_the_answer(faulty: tuple[SandboxProcess, Wire]) -> None:
    """A create made on the exchange whose answer is still on its way back."""
    import threading

    sandbox, wire = faulty
    sandbox.add_fault(action="latency_after", method="POST", path=KEY, delay_ms=1500, count=1)
    answered = threading.Event()

    def create() -> None:
        wire.send("POST", KEY, body_params={"apiName": "slow-answer"})
        answered.set()

    threading.Thread(target=create, daemon=True).start()
    deadline = time.monotonic() + 1.2
    while names(sandbox, wire) != ["slow-answer"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert not answered.is_set()  # the key exists; its answer has not arrived
    assert answered.wait(5)


def test_probability_zero_never_fires(faulty: tuple[SandboxProcess, Wire]) -> None:
    sandbox, wire = faulty
    sandbox.add_fault(action="error", path=LIST, status=500, probability=0.0)
    assert all(wire.send("GET", LIST).status_code == 200 for _ in range(5))


def test_skewed_clock_moves_server_time_and_timestamp_checks(faulty: tuple[SandboxProcess, Wire]) -> None:
    sandbox, wire = faulty
    sandbox.admin("POST", "clock", {"skewMs": -5000})
    server = requests.get(f"{sandbox.base_url}/api/v3/time", timeout=5).json()["serverTime"]
    assert abs(server - (time.time() * 1000 - 5000)) < 1000
    assert error_code(wire.send("GET", LIST)) == -1021  # our timestamp is now 5 s ahead


def test_request_log_counts_per_endpoint_without_parameters(faulty: tuple[SandboxProcess, Wire]) -> None:
    sandbox, wire = faulty
    sandbox.reset_requests()
    wire.send("GET", LIST)
    wire.send("GET", LIST)
    wire.send("POST", KEY, body_params={"apiName": "logged"})
    assert sandbox.request_counts() == {f"GET {LIST}": 2, f"POST {KEY}": 1}
    assert "signature" not in str(sandbox.requests_log())


def test_bad_fault_rule_is_refused(sandbox: SandboxProcess) -> None:
    token = (sandbox.data_dir / "admin-token").read_text().strip()
    response = requests.post(f"{sandbox.base_url}/admin/faults", json={"action": "explode", "path": "/"},
                             headers={"X-Sandbox-Admin-Token": token}, timeout=5)
    assert response.status_code == 400


def test_the_admin_interface_refuses_a_web_page_on_this_machine(sandbox: SandboxProcess) -> None:
    """CSRF and DNS rebinding: a page's cross-origin text/plain POST, a foreign Host, no token."""
    url = f"{sandbox.base_url}/admin/clock"
    token = (sandbox.data_dir / "admin-token").read_text().strip()
    page = requests.post(url, data='{"skewMs": 99999}', timeout=5,
                         headers={"Content-Type": "text/plain", "Origin": "https://evil.example"})
    rebound = requests.post(url, json={"skewMs": 99999}, timeout=5,
                            headers={"Host": "evil.example", "X-Sandbox-Admin-Token": token})
    plain = requests.post(url, data='{"skewMs": 99999}', timeout=5,
                          headers={"Content-Type": "text/plain", "X-Sandbox-Admin-Token": token})
    read = requests.get(f"{sandbox.base_url}/admin/keys", timeout=5)
    assert [r.status_code for r in (page, rebound, plain, read)] == [403, 403, 415, 403]
    assert sandbox.admin("GET", "state")["skewMs"] == 0
    assert (sandbox.data_dir / "admin-token").stat().st_mode & 0o077 == 0
    assert (sandbox.data_dir / "exchange.sqlite3").stat().st_mode & 0o077 == 0
    assert sandbox.data_dir.stat().st_mode & 0o077 == 0


def test_accounts_made_through_the_admin_interface_sign_and_are_logged_as_theirs(
    clean_faults: SandboxProcess,
) -> None:
    """The harness makes accounts through the running server (POST /admin/accounts), as
    `account create` makes them; the request log names each request's account."""
    sandbox = clean_faults
    made = sandbox.create_account("RSA", isolated_symbols="SOLUSDT")
    assert "BEGIN PRIVATE KEY" in made["privateKey"] and made["apiKey"]
    sandbox.reset_requests()
    wire = Wire(sandbox.base_url, made)
    listed = wire.send("GET", LIST, {"symbol": "SOLUSDT"})
    assert listed.status_code == 200, listed.text
    assert [r["account"] for r in sandbox.requests_log()] == [made["accountId"]]
    assert sandbox.requests_log("someone-else") == []

    token = (sandbox.data_dir / "admin-token").read_text().strip()
    refused = requests.post(f"{sandbox.base_url}/admin/accounts", timeout=10,
                            json={"keyType": "ED25519", "restrictions": {"godMode": True}},
                            headers={"X-Sandbox-Admin-Token": token})
    assert refused.status_code == 400 and "restrictions" in refused.json()["msg"]
