"""The provider's whole lifecycle, and its unknown outcomes, under every reading of what Binance
leaves undocumented (sandbox dialects). In each one the exchange and the state end in agreement,
or the user gets a clear error and the exchange keeps what it had."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from margin_special_keys.errors import DuplicateName, ExchangeStateMismatch
from margin_special_keys.margin_special_key import MarginSpecialKeyProvider
from margin_special_keys.sandbox.dialects import Dialect, every_variant
from tests.harness import SandboxAccount, SandboxProcess
from tests.provider.conftest import checked, configured

KEY = "/sapi/v1/margin/apiKey"


@pytest.fixture(params=every_variant(), ids=lambda d: ",".join(
    f"{k}={v}" for k, v in d.as_json().items() if v != Dialect().as_json()[k]) or "default")
def dialect(request: pytest.FixtureRequest, clean_faults: SandboxProcess) -> Iterator[Dialect]:
    chosen: Dialect = request.param
    clean_faults.admin("POST", "dialect", chosen.as_json())
    yield chosen
    clean_faults.admin("POST", "dialect", Dialect().as_json())


def held(sandbox: SandboxProcess, account: SandboxAccount) -> dict[str, list[str]]:
    """apiKey -> the addresses the exchange holds, read through the admin view."""
    return {k["apiKey"]: sorted(k["ips"]) for k in sandbox.special_keys(account["accountId"])}


def run(sandbox: SandboxProcess, account: SandboxAccount) -> MarginSpecialKeyProvider:
    """A fresh provider, as each `pulumi` command starts one."""
    return configured(sandbox.base_url, account)


def test_lifecycle(dialect: Dialect, sandbox: SandboxProcess, account: SandboxAccount) -> None:
    up = run(sandbox, account)
    news = checked(up, api_name="life", ip_whitelist=["10.0.0.1", "10.0.0.2"])
    made = up.create(news)
    outs: dict[str, Any] = dict(made.outs or {})
    assert held(sandbox, account) == {made.id: ["10.0.0.1", "10.0.0.2"]}

    # Adding an address works whether edit-ip replaces or appends.
    wider = {**news, "ip_whitelist": ["10.0.0.1", "10.0.0.2", "10.0.0.3"]}
    outs = dict(run(sandbox, account).update(made.id, outs, wider).outs or {})
    assert held(sandbox, account) == {made.id: ["10.0.0.1", "10.0.0.2", "10.0.0.3"]}

    # Removing one: exact where edit-ip replaces; a clear error where it appends.
    narrower = {**news, "ip_whitelist": ["10.0.0.3"]}
    if dialect.edit_ip == "append":
        with pytest.raises(ExchangeStateMismatch, match="adds to a key's list instead of replacing"):
            run(sandbox, account).update(made.id, outs, narrower)
    else:
        outs = dict(run(sandbox, account).update(made.id, outs, narrower).outs or {})
    # A refresh then agrees with the exchange, whichever way it went.
    refreshed = run(sandbox, account).read(made.id, outs)
    assert refreshed.id == made.id
    outs = dict(refreshed.outs or {})
    assert sorted(outs["ip_whitelist"]) == held(sandbox, account)[made.id]

    # Drift: someone edits the key by hand; the refresh sees exactly it.
    sandbox.script_client(account).edit_ip(made.id, None, ["10.0.0.9"])
    drifted = dict(run(sandbox, account).read(made.id, outs).outs or {})
    assert sorted(drifted["ip_whitelist"]) == held(sandbox, account)[made.id]

    # A rename is a new key: made first, then the old one deleted by apiKey.
    renamed_news = checked(run(sandbox, account), api_name="life-2", ip_whitelist=["10.0.0.3"])
    replace = run(sandbox, account)
    assert replace.diff(made.id, drifted, renamed_news).replaces == ["api_name"]
    renamed = replace.create(renamed_news)
    replace.delete(made.id, drifted)
    assert set(held(sandbox, account)) == {renamed.id}
    assert run(sandbox, account).read(made.id, drifted).id is None  # gone, by the key list

    # A key deleted by hand: refresh calls it gone, and a destroy of it is done, not an error.
    sandbox.script_client(account).delete_special_key(renamed.id, None)
    assert run(sandbox, account).read(renamed.id, renamed.outs or {}).id is None
    run(sandbox, account).delete(renamed.id, renamed.outs or {})
    assert held(sandbox, account) == {}


def test_a_create_first_replacement_keeping_its_name(
    dialect: Dialect, sandbox: SandboxProcess, account: SandboxAccount,
) -> None:
    up = run(sandbox, account)
    old = up.create(checked(up, api_name="rot", keepers={"v": "1"}))
    news = checked(run(sandbox, account), api_name="rot", keepers={"v": "2"})
    replace = run(sandbox, account)
    assert replace.diff(old.id, old.outs or {}, news).replaces == ["keepers"]
    if dialect.duplicate_name == "refuse":
        with pytest.raises(DuplicateName, match="set deleteBeforeReplace: true"):
            replace.create(news)
        assert set(held(sandbox, account)) == {old.id}  # nothing changed
        first = run(sandbox, account)
        news = {**news, "delete_before_replace": True}
        assert first.diff(old.id, old.outs or {}, news).delete_before_replace is True
        first.delete(old.id, old.outs or {})
        new = first.create(news)
    else:
        new = replace.create(news)
        replace.delete(old.id, old.outs or {})
    assert set(held(sandbox, account)) == {new.id}
    run(sandbox, account).delete(new.id, new.outs or {})


@pytest.mark.parametrize("fault", [{"action": "error_after", "status": 500},
                                   {"action": "drop_after"},
                                   {"action": "error_after", "status": 200, "code": -1007,
                                    "msg": "Timeout waiting for response from backend server."}])
def test_an_unknown_create_outcome_is_reconciled(
    dialect: Dialect, sandbox: SandboxProcess, account: SandboxAccount, fault: dict[str, Any],
) -> None:
    up = run(sandbox, account)
    news = checked(up, api_name="lost", ip_whitelist=["10.0.0.1"])
    sandbox.add_fault(method="POST", path=KEY, count=1, **fault)
    made = up.create(news)
    assert list(held(sandbox, account)) == [made.id]  # ours, once
    run(sandbox, account).delete(made.id, made.outs or {})
    assert held(sandbox, account) == {}
