"""Rotation under an overlap window, called as the engine calls the provider, against the sandbox:
the new key is made in place and becomes current, the previous one stays usable until its window
ends, the first run after that retires it, and a destroy deletes both. Under every dialect."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from margin_special_keys.binance.client import BinanceClient
from margin_special_keys.binance.signing import HmacSigner, PrivateKeySigner
from margin_special_keys.errors import (
    AccountKeyLimit,
    DuplicateName,
    MarginSpecialKeysError,
    WindowStillOpen,
)
from margin_special_keys.margin_special_key import MarginSpecialKeyProvider
from margin_special_keys.sandbox.dialects import Dialect, every_variant
from tests.harness import SandboxAccount, SandboxProcess
from tests.provider.conftest import checked, configured

HOUR_MS = 3600 * 1000
LISTED = "203.0.113.10"
OFF_LIST = "203.0.113.99"


@pytest.fixture(params=every_variant(), ids=lambda d: ",".join(
    f"{k}={v}" for k, v in d.as_json().items() if v != Dialect().as_json()[k]) or "default")
def dialect(request: pytest.FixtureRequest, clean_faults: SandboxProcess) -> Iterator[Dialect]:
    chosen: Dialect = request.param
    clean_faults.admin("POST", "dialect", chosen.as_json())
    yield chosen
    clean_faults.admin("POST", "dialect", Dialect().as_json())


def run(sandbox: SandboxProcess, account: SandboxAccount) -> MarginSpecialKeyProvider:
    """A fresh provider, as each `pulumi` command starts one."""
    return configured(sandbox.base_url, account)


def on_exchange(sandbox: SandboxProcess, account: SandboxAccount) -> set[str]:
    return {k["apiKey"] for k in sandbox.special_keys(account["accountId"])}


def signs(sandbox: SandboxProcess, api_key: str, private_key: str | None,
          secret_key: str | None) -> bool:
    """The key signs GET /api/v3/account, from an address on its list, and the exchange takes it."""
    signer = PrivateKeySigner(private_key) if private_key else HmacSigner(str(secret_key))
    try:
        BinanceClient(sandbox.base_url, api_key, signer).account_uid()
    except MarginSpecialKeysError:
        return False
    return True


def later(outs: dict[str, Any], hours: float) -> dict[str, Any]:
    """The state as a run `hours` from now reads it: the rotation happened that long before."""
    return {**outs, "created_at_ms": outs["created_at_ms"] - hours * HOUR_MS}


@pytest.mark.parametrize("key_type", ["ED25519", "HMAC"])
def test_a_rotation_keeps_the_old_key_usable_through_its_window_then_retires_it(
    dialect: Dialect, sandbox: SandboxProcess, account: SandboxAccount, key_type: str,
) -> None:
    sandbox.set_caller_address(account["accountId"], LISTED)
    try:
        up = run(sandbox, account)
        news = checked(up, api_name="bot", key_type=key_type, ip_whitelist=[LISTED],
                       keepers={"v": "1"}, overlap_hours=24)
        made = up.create(news)
        first = dict(made.outs or {})
        assert signs(sandbox, first["api_key"], first.get("private_key"), first.get("secret_key"))

        rotated_news = {**news, "keepers": {"v": "2"}}
        rotation = run(sandbox, account)
        plan = rotation.diff(made.id, first, rotated_news)
        assert (plan.changes, plan.replaces) == (True, [])  # in place: an update, not a new resource
        if dialect.duplicate_name == "refuse":
            # The exchange refuses a second key of one name: nothing changes, and the way out is said.
            with pytest.raises(DuplicateName, match="Rotate without a window this time"):
                rotation.update(made.id, first, rotated_news)
            assert on_exchange(sandbox, account) == {first["api_key"]}
            run(sandbox, account).delete(made.id, first)
            return
        outs = dict(rotation.update(made.id, first, rotated_news).outs or {})
        current, previous = outs["api_key"], outs["previous_api_key"]
        assert previous == first["api_key"] and current != previous
        assert on_exchange(sandbox, account) == {current, previous}
        assert outs["previous_retires_at_ms"] == outs["created_at_ms"] + 24 * HOUR_MS
        assert outs["previous_key_type"] == key_type
        secret = "private_key" if key_type != "HMAC" else "secret_key"
        assert outs[f"previous_{secret}"] == first[secret] and outs[secret] != first[secret]
        # Both keys work through the window, from the addresses on their list only.
        assert signs(sandbox, current, outs.get("private_key"), outs.get("secret_key"))
        assert signs(sandbox, previous, outs.get("previous_private_key"), outs.get("previous_secret_key"))
        sandbox.set_caller_address(account["accountId"], OFF_LIST)
        assert not signs(sandbox, current, outs.get("private_key"), outs.get("secret_key"))
        sandbox.set_caller_address(account["accountId"], LISTED)

        # Within the window: nothing to do, and a refresh keeps both.
        assert run(sandbox, account).diff(made.id, later(outs, 23), rotated_news).changes is False
        refreshed = run(sandbox, account).read(made.id, outs)
        assert refreshed.outs is not None and refreshed.outs["previous_api_key"] == previous
        assert refreshed.id == made.id  # the resource's id stays the first key's apiKey

        # After it: the next run retires the previous key, by apiKey, and only it.
        due = later(outs, 25)
        retiring = run(sandbox, account)
        assert retiring.diff(made.id, due, rotated_news).changes is True
        retired = dict(retiring.update(made.id, due, rotated_news).outs or {})
        assert on_exchange(sandbox, account) == {current}
        assert not any(k.startswith("previous_") for k in retired)
        assert not signs(sandbox, previous, outs.get("previous_private_key"), outs.get("previous_secret_key"))
        assert signs(sandbox, current, retired.get("private_key"), retired.get("secret_key"))
        assert run(sandbox, account).diff(made.id, retired, rotated_news).changes is False

        # A destroy during a window deletes both keys.
        again_news = {**rotated_news, "keepers": {"v": "3"}}
        again = dict(run(sandbox, account).update(made.id, retired, again_news).outs or {})
        assert len(on_exchange(sandbox, account)) == 2
        run(sandbox, account).delete(made.id, again)
        assert on_exchange(sandbox, account) == set()
    finally:
        sandbox.set_caller_address(account["accountId"], None)


def test_rotating_again_inside_the_window_is_refused_and_overlap_0_replaces_both(
    provider: MarginSpecialKeyProvider, sandbox: SandboxProcess, account: SandboxAccount,
) -> None:
    news = checked(provider, api_name="bot", keepers={"v": "1"}, overlap_hours=24)
    made = provider.create(news)
    v2 = {**news, "keepers": {"v": "2"}}
    outs = dict(provider.update(made.id, dict(made.outs or {}), v2).outs or {})
    with pytest.raises(WindowStillOpen, match=r"before its window ends at 20\d\d-.* UTC.*overlapHours: 0"):
        provider.diff(made.id, later(outs, 1), {**v2, "keepers": {"v": "3"}})
    assert len(on_exchange(sandbox, account)) == 2  # nothing was touched
    # Without a window the change is a replacement: the old resource goes, with both its keys.
    plan = provider.diff(made.id, outs, checked(provider, api_name="bot", keepers={"v": "3"}))
    assert plan.replaces == ["keepers"]
    # A shorter window declared later retires the previous key sooner.
    assert provider.diff(made.id, later(outs, 2), {**v2, "overlap_hours": 1}).changes is True
    provider.delete(made.id, outs)
    assert on_exchange(sandbox, account) == set()


def test_a_rotation_under_a_window_needs_room_for_its_new_key(
    clean_faults: SandboxProcess, account: SandboxAccount,
) -> None:
    sandbox = clean_faults
    provider = configured(sandbox.base_url, account)
    news = checked(provider, api_name="bot", keepers={"v": "1"}, overlap_hours=24)
    made = provider.create(news)
    others = sandbox.script_client(account)
    for i in range(28):  # the account is full: its own key, ours and 28 others
        others.create_special_key(f"other-{i}", None, ["10.0.0.1"], None, None)
    planning = configured(sandbox.base_url, account)
    with pytest.raises(AccountKeyLimit, match=r"room for 0 new API key\(s\).*deleteBeforeReplace"):
        planning.diff(made.id, dict(made.outs or {}), {**news, "keepers": {"v": "2"}})


def test_a_refresh_keeps_what_still_works_when_a_key_is_deleted_by_hand(
    provider: MarginSpecialKeyProvider, sandbox: SandboxProcess, account: SandboxAccount,
) -> None:
    news = checked(provider, api_name="bot", keepers={"v": "1"}, overlap_hours=24)
    made = provider.create(news)
    outs = dict(provider.update(made.id, dict(made.outs or {}), {**news, "keepers": {"v": "2"}}).outs or {})
    by_hand = sandbox.script_client(account)

    # The previous key deleted by hand: the state stops holding it.
    by_hand.delete_special_key(outs["previous_api_key"], None)
    read = run(sandbox, account).read(made.id, outs)
    assert read.outs is not None and "previous_api_key" not in read.outs
    assert read.outs["api_key"] == outs["api_key"]

    # The current key deleted by hand inside the window: the previous one is current again.
    again = {**news, "keepers": {"v": "3"}}
    outs = dict(run(sandbox, account).update(made.id, later(dict(read.outs), 25), again).outs or {})
    by_hand.delete_special_key(outs["api_key"], None)
    read = run(sandbox, account).read(made.id, outs)
    assert read.outs is not None
    assert read.outs["api_key"] == outs["previous_api_key"]
    assert read.outs["private_key"] == outs["previous_private_key"]
    assert "previous_api_key" not in read.outs
    run(sandbox, account).delete(made.id, dict(read.outs))
    assert on_exchange(sandbox, account) == set()
