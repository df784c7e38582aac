"""Rate limits, restarts and concurrency of the sandbox exchange."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import pytest

from margin_special_keys.sandbox.errors import ExchangeError
from margin_special_keys.sandbox.models import RateLimiter
from tests.harness import SandboxProcess
from tests.sandbox.conftest import Wire, error_code

KEY = "/sapi/v1/margin/apiKey"
LIST = "/sapi/v1/margin/api-key-list"


def test_uid_weight_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    limited = SandboxProcess(tmp_path / "limited", uid_weight_limit=3)
    try:
        wire = Wire(limited.base_url, limited.create_account("HMAC"))
        used = [wire.send("GET", LIST).headers["X-SAPI-USED-UID-WEIGHT-1M"] for _ in range(3)]
        assert used == ["1", "2", "3"]
        refused = wire.send("GET", LIST)
        assert (refused.status_code, error_code(refused)) == (429, -1003)
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # Each endpoint has its own budget.
        assert wire.send("POST", KEY, body_params={"apiName": "x"}).status_code == 200
    finally:
        limited.stop()


def retry_after(limiter: RateLimiter, account: str, at_ms: int) -> int:
    with pytest.raises(ExchangeError) as refused:
        limiter.charge(account, LIST, 1, at_ms)
    assert refused.value.retry_after is not None
    return refused.value.retry_after


def test_weight_is_counted_per_calendar_minute_as_binance_does() -> None:
    limiter = RateLimiter(3)
    for at in (58_000, 58_500, 59_000):
        limiter.charge("a", LIST, 1, at)
    assert retry_after(limiter, "a", 59_200) == 1  # until the minute turns
    assert limiter.charge("a", LIST, 1, 60_000) == 1  # a new minute, a new budget
    assert limiter.charge("b", LIST, 1, 59_500) == 1  # each account its own


def test_a_test_window_starts_at_the_accounts_first_request() -> None:
    limiter = RateLimiter(3, window_ms=15_000)
    for at in (100_000, 107_000, 114_000):  # straddles no boundary, whatever the calendar says
        limiter.charge("a", LIST, 1, at)
    assert retry_after(limiter, "a", 110_000 + 4_000) == 1
    assert retry_after(limiter, "a", 105_000) == 10
    assert limiter.charge("a", LIST, 1, 115_000) == 1
    assert limiter.charge("b", LIST, 1, 114_000) == 1  # b's windows start at its own first request


def test_a_restart_keeps_every_key(tmp_path: Path) -> None:
    first = SandboxProcess(tmp_path / "data")
    account = first.create_account("ED25519")
    wire = Wire(first.base_url, account)
    made = {wire.send("POST", KEY, body_params={"apiName": f"k{i}", "ip": "10.0.0.1"}).json()["apiKey"]
            for i in range(5)}
    first.stop()

    second = SandboxProcess(tmp_path / "data")
    try:
        wire = Wire(second.base_url, account)  # the same account key still signs
        assert {k["apiKey"] for k in wire.send("GET", LIST).json()} == made
        assert {k["apiKey"] for k in second.special_keys(account["accountId"])} == made
    finally:
        second.stop()


def test_fifty_concurrent_creates_lose_and_duplicate_nothing(sandbox: SandboxProcess) -> None:
    wires = [Wire(sandbox.base_url, sandbox.create_account("HMAC")) for _ in range(5)]
    jobs = [(wires[i % 5], f"c{i}") for i in range(50)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda j: j[0].send("POST", KEY, body_params={"apiName": j[1]}), jobs))
    assert [a.status_code for a in answers] == [200] * 50
    created = {a.json()["apiKey"] for a in answers}
    assert len(created) == 50
    stored = [k for w in wires for k in sandbox.special_keys(w.account["accountId"])]
    assert sorted(k["apiKey"] for k in stored) == sorted(created)


def test_concurrent_creates_never_pass_the_thirty_key_limit(sandbox: SandboxProcess) -> None:
    wire = Wire(sandbox.base_url, sandbox.create_account("HMAC"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(
            lambda i: wire.send("POST", KEY, body_params={"apiName": f"k{i}"}), range(40)))
    assert sum(a.status_code == 200 for a in answers) == 29
    assert len(sandbox.special_keys(wire.account["accountId"])) == 29
