"""Unknown outcomes, retries and rate limits: the exchange and the provider end in agreement."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from margin_special_keys.binance.errors import (
    AuthenticationError,
    NotMarginPair,
    RateLimited,
    UnsupportedAccount,
)
from margin_special_keys.errors import DuplicateName, NotSent, OutcomeUnknown
from margin_special_keys.margin_special_key import MarginSpecialKeyProvider
from tests.harness import UNKNOWN_OUTCOME_FAULTS, SandboxAccount, SandboxProcess
from tests.provider.conftest import checked, configured

KEY = "/sapi/v1/margin/apiKey"
EDIT_IP = "/sapi/v1/margin/apiKey/ip"
LIST = "/sapi/v1/margin/api-key-list"
QUERY = "/sapi/v1/margin/apiKey"

FAULTS = UNKNOWN_OUTCOME_FAULTS


@pytest.mark.parametrize("key_type", ["ED25519", "RSA", "HMAC"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_create_with_a_fault_leaves_exactly_one_key(
    provider: MarginSpecialKeyProvider, clean_faults: SandboxProcess,
    exchange_keys: Callable[[], list[dict[str, Any]]], fault: str, key_type: str,
) -> None:
    clean_faults.add_fault(method="POST", path=KEY, count=1, **FAULTS[fault])
    result = provider.create(checked(provider, api_name="desk", key_type=key_type,
                                     ip_whitelist=["10.0.0.1"]))
    keys = exchange_keys()
    assert [(k["apiKey"], k["ip"]) for k in keys] == [(result.id, "10.0.0.1")]
    outs = result.outs or {}
    if key_type == "HMAC":
        assert len(outs["secret_key"]) == 64  # we hold the secret of the key that exists
    else:
        assert "PRIVATE KEY" in outs["private_key"]
    provider.delete(result.id, outs)
    assert exchange_keys() == []


def test_create_gives_up_cleanly_when_every_answer_is_lost(
    provider: MarginSpecialKeyProvider, clean_faults: SandboxProcess,
    exchange_keys: Callable[[], list[dict[str, Any]]],
) -> None:
    clean_faults.add_fault(method="POST", path=KEY, action="drop_after")
    with pytest.raises(OutcomeUnknown) as raised:
        provider.create(checked(provider, api_name="lost", key_type="HMAC"))
    assert "nothing was left behind" in str(raised.value)
    assert exchange_keys() == []


@pytest.mark.parametrize("fault", list(FAULTS))
def test_ip_update_with_a_fault_ends_with_the_declared_list(
    provider: MarginSpecialKeyProvider, clean_faults: SandboxProcess,
    exchange_keys: Callable[[], list[dict[str, Any]]], fault: str,
) -> None:
    created = provider.create(checked(provider, api_name="u", symbol="BTCUSDT", ip_whitelist=["10.0.0.1"]))
    clean_faults.add_fault(method="PUT", path=EDIT_IP, count=1, **FAULTS[fault])
    news = checked(provider, api_name="u", symbol="BTCUSDT", ip_whitelist=["10.0.0.2", "10.0.0.3"])
    updated = provider.update(created.id, created.outs or {}, news)
    assert (updated.outs or {})["ip_whitelist"] == ["10.0.0.2", "10.0.0.3"]
    assert [(k["apiKey"], k["ip"]) for k in exchange_keys()] == [(created.id, "10.0.0.2,10.0.0.3")]
    provider.delete(created.id, created.outs or {})


@pytest.mark.parametrize("fault", list(FAULTS))
def test_delete_with_a_fault_removes_the_key(
    provider: MarginSpecialKeyProvider, clean_faults: SandboxProcess,
    exchange_keys: Callable[[], list[dict[str, Any]]], fault: str,
) -> None:
    created = provider.create(checked(provider, api_name="d"))
    clean_faults.add_fault(method="DELETE", path=KEY, count=1, **FAULTS[fault])
    provider.delete(created.id, created.outs or {})
    assert exchange_keys() == []


def through(provider: MarginSpecialKeyProvider, operation: str, inject: Callable[[], object]) -> str | None:
    """Create, update (IPs) or delete one key with `inject` applied just before that operation;
    the apiKey left on the exchange (None after a delete)."""
    if operation == "create":
        inject()
        return provider.create(checked(provider, api_name="op", ip_whitelist=["10.0.0.1"])).id
    created = provider.create(checked(provider, api_name="op", ip_whitelist=["10.0.0.1"]))
    inject()
    if operation == "update":
        news = checked(provider, api_name="op", ip_whitelist=["10.0.0.2"])
        provider.update(created.id, created.outs or {}, news)
        return created.id
    provider.delete(created.id, created.outs or {})
    return None


OPERATIONS = {"create": ("POST", KEY), "update": ("PUT", EDIT_IP), "delete": ("DELETE", KEY)}


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_clock_skew_resyncs_once_and_succeeds(
    provider: MarginSpecialKeyProvider, clean_faults: SandboxProcess,
    exchange_keys: Callable[[], list[dict[str, Any]]], operation: str,
) -> None:
    # Our clock is 4 s ahead of the exchange from then on.
    left = through(provider, operation, lambda: clean_faults.admin("POST", "clock", {"skewMs": -4000}))
    assert [k["apiKey"] for k in exchange_keys()] == ([left] if left else [])
    if operation == "update":
        assert [k["ip"] for k in exchange_keys()] == ["10.0.0.2"]
    log = [(r["path"], r["code"]) for r in clean_faults.requests_log()]
    assert ("/api/v3/time", None) in log
    if left:
        provider.delete(left, {"api_key": left, "api_name": "op"})


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_latency_within_the_timeout_is_just_slower(
    provider: MarginSpecialKeyProvider, clean_faults: SandboxProcess,
    exchange_keys: Callable[[], list[dict[str, Any]]], operation: str,
) -> None:
    method, path = OPERATIONS[operation]
    start = time.monotonic()
    left = through(provider, operation, lambda: clean_faults.add_fault(
        action="latency", path=path, method=method, delay_ms=1500, count=1))
    assert time.monotonic() - start >= 1.5
    assert [k["apiKey"] for k in exchange_keys()] == ([left] if left else [])
    if left:
        provider.delete(left, {"api_key": left, "api_name": "op"})


def test_read_and_delete_of_a_key_that_is_gone(
    provider: MarginSpecialKeyProvider, exchange_keys: Callable[[], list[dict[str, Any]]],
) -> None:
    created = provider.create(checked(provider, api_name="gone"))
    provider.delete(created.id, created.outs or {})
    assert provider.read(created.id, created.outs or {}).id is None
    provider.delete(created.id, created.outs or {})  # already gone counts as deleted


def test_exchange_errors_become_actionable_messages(
    sandbox: SandboxProcess, account: SandboxAccount, provider: MarginSpecialKeyProvider,
) -> None:
    with pytest.raises(NotMarginPair) as raised:
        provider.create(checked(provider, api_name="x", symbol="SOLUSDT"))
    assert "-3028" in str(raised.value) and "isolated margin pair" in str(raised.value)

    # A new key needs room, so its preview already lists the account: a wrong provider key shows
    # there, as a check failure, before anything could be created.
    stranger = configured(sandbox.base_url, {"apiKey": "Z" * 64, "secretKey": "s" * 64})
    found = stranger.check({}, {"api_name": "x", "ip_whitelist": ["198.51.100.7"]}).failures
    assert len(found) == 1 and found[0].property == ""
    assert "Enable Spot & Margin Trading" in found[0].reason and "s" * 64 not in found[0].reason
    with pytest.raises(AuthenticationError) as auth:
        stranger.create({"api_name": "x", "ip_whitelist": ["198.51.100.7"]})
    assert "Enable Spot & Margin Trading" in str(auth.value) and "s" * 64 not in str(auth.value)


def test_portfolio_margin_accounts_cannot_hold_special_keys(sandbox: SandboxProcess) -> None:
    pm = configured(sandbox.base_url, sandbox.create_account("HMAC", account_type="PORTFOLIO_MARGIN"))
    with pytest.raises(UnsupportedAccount) as raised:
        pm.create(checked(pm, api_name="x", key_type="HMAC"))
    assert "Portfolio Margin accounts are unsupported" in str(raised.value)


def test_418_ban_waits_as_retry_after_says_then_succeeds(
    provider: MarginSpecialKeyProvider, clean_faults: SandboxProcess,
    exchange_keys: Callable[[], list[dict[str, Any]]],
) -> None:
    clean_faults.add_fault(action="error", method="GET", path=LIST, status=418, code=-1003,
                           msg="Way too many requests; IP banned.", retry_after=1, count=1)
    start = time.monotonic()
    created = provider.create(checked(provider, api_name="banned-briefly"))
    assert time.monotonic() - start >= 1.0
    assert [k["apiKey"] for k in exchange_keys()] == [created.id]
    provider.delete(created.id, created.outs or {})


def test_a_ban_longer_than_the_bound_fails_with_advice(
    provider: MarginSpecialKeyProvider, clean_faults: SandboxProcess, account: SandboxAccount,
) -> None:
    news = checked(provider, api_name="banned-long")
    fresh = configured(clean_faults.base_url, account)  # a new run: nothing listed yet
    clean_faults.add_fault(action="error", method="GET", path=LIST, status=418, code=-1003,
                           msg="Way too many requests; IP banned.", retry_after=600, count=1)
    start = time.monotonic()
    with pytest.raises(RateLimited) as raised:
        fresh.create(news)
    assert "418" in str(raised.value) and "Retry-After" in str(raised.value)
    assert time.monotonic() - start < 5  # a ban longer than the bound is not waited out


def test_creates_list_each_scope_once_per_process(
    provider: MarginSpecialKeyProvider, clean_faults: SandboxProcess,
    exchange_keys: Callable[[], list[dict[str, Any]]],
) -> None:
    clean_faults.reset_requests()
    made = [provider.create(checked(provider, api_name=f"k{i}", symbol=symbol))
            for i, symbol in enumerate([None, None, None, "BTCUSDT", "BTCUSDT"])]
    calls = [(r["method"], r["path"]) for r in clean_faults.requests_log()]
    # The room count at the first check lists every scope once (cross, BTCUSDT, ETHUSDT); the
    # creates reuse those listings.
    assert calls.count(("GET", LIST)) == 3
    assert calls.count(("POST", KEY)) == 5
    # What this process made counts for the duplicate check that follows.
    with pytest.raises(DuplicateName, match="already exists"):
        provider.create(checked(provider, api_name="k0"))
    for result in made:
        provider.delete(result.id, result.outs or {})
    assert exchange_keys() == []


def test_reads_of_one_refresh_share_one_listing_and_see_changes(
    provider: MarginSpecialKeyProvider, sandbox: SandboxProcess, account: SandboxAccount,
    clean_faults: SandboxProcess,
) -> None:
    made = [provider.create(checked(provider, api_name=f"r{i}", ip_whitelist=["10.0.0.1"]))
            for i in range(4)]
    sandbox.script_client(account).edit_ip(made[0].id, None, ["10.9.9.9"])
    clean_faults.reset_requests()
    refresh = configured(clean_faults.base_url, account)  # a refresh is a run of its own
    reads = [refresh.read(m.id, m.outs or {}) for m in made]
    calls = [(r["method"], r["path"]) for r in clean_faults.requests_log()]
    # Which account this is (once per run: the keys know theirs), then one list for all reads.
    assert calls == [("GET", "/api/v3/account"), ("GET", LIST)]
    assert (reads[0].outs or {})["ip_whitelist"] == ["10.9.9.9"]
    # A key deleted by this process is gone for the very next read.
    refresh.delete(made[1].id, made[1].outs or {})
    assert refresh.read(made[1].id, made[1].outs or {}).id is None
    for m in made[0:1] + made[2:]:
        provider.delete(m.id, m.outs or {})


def test_an_unreachable_exchange_says_so(account: SandboxAccount) -> None:
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    from tests.harness import allow_endpoint

    allow_endpoint(f"http://127.0.0.1:{port}")
    nowhere = configured(f"http://127.0.0.1:{port}", account)
    news = {"api_name": "x", "ip_whitelist": ["198.51.100.7"]}
    [failure] = nowhere.check({}, news).failures  # the room count is the first request
    assert "could not connect" in failure.reason and "nothing was sent" in failure.reason
    with pytest.raises(NotSent) as raised:
        nowhere.create(news)
    assert "could not connect" in str(raised.value) and "nothing was sent" in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_a_planned_create_records_which_keys_its_scope_already_held(
    provider: MarginSpecialKeyProvider, sandbox: SandboxProcess, account: SandboxAccount,
) -> None:
    """The orphan audit's proof (gitops/orphans.py): the engine writes these inputs into the
    state before it calls create, so a killed run's pending create says which keys it did not
    make, and when it was planned. A key made later under the same name is not among them."""
    from margin_special_keys.account import key_digest

    script = sandbox.script_client(account)
    cross = script.create_special_key("by-hand", None, ["10.0.0.9"], None, None)
    isolated = script.create_special_key("by-hand", "BTCUSDT", ["10.0.0.9"], None, None)
    planned = checked(provider, api_name="new-key")
    assert planned["__create_plan"]["preexisting_keys"] == [key_digest(cross.api_key)]
    assert checked(provider, api_name="new-pair-key", symbol="BTCUSDT")["__create_plan"][
        "preexisting_keys"] == [key_digest(isolated.api_key)]
    created = provider.create({"__provider": "blob", **planned})
    assert "__create_plan" not in (created.outs or {})  # a record of the plan, never an output
    assert abs(planned["__create_plan"]["planned_at_ms"] - time.time() * 1000) < 60_000
    assert key_digest(created.id) not in planned["__create_plan"]["preexisting_keys"]
    digests = planned["__create_plan"]["preexisting_keys"]
    assert all(len(d) == 16 and cross.api_key not in d for d in digests)
