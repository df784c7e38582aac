"""The exchange's rules under each dialect, in process (moto-style): no HTTP, no subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from margin_special_keys.sandbox.dialects import CHOICES, Dialect, every_variant
from margin_special_keys.sandbox.errors import ExchangeError
from margin_special_keys.sandbox.models import Exchange
from margin_special_keys.sandbox.store import Account, Store


def exchange(tmp_path: Path, **switches: str) -> tuple[Exchange, Account]:
    ex = Exchange(Store(tmp_path), dialect=Dialect(**switches))
    return ex, ex.create_account("CROSS_MARGIN_CLASSIC", "HMAC").account


def test_the_default_is_the_strictest_reading() -> None:
    assert Dialect().as_json() == {
        "edit-ip": "replace", "ip-listing": "zero-prefix", "missing-key": "empty",
        "duplicate-name": "allow", "api-name": "echo", "type-spelling": "docs",
        "delete-body": "refuse",
    }
    assert len(every_variant()) == 1 + sum(len(v) - 1 for v in CHOICES.values())


def test_dialects_parse_from_the_command_line_and_refuse_unknown_switches() -> None:
    assert Dialect.parse("edit-ip=append, missing-key=-2008").edit_ip == "append"
    assert Dialect.parse("").missing_key == "empty"
    with pytest.raises(ValueError, match="unknown dialect switch 'colour'"):
        Dialect.parse("colour=red")
    with pytest.raises(ValueError, match="edit-ip must be one of replace, append"):
        Dialect.parse("edit-ip=merge")


def test_edit_ip_replaces_or_appends(tmp_path: Path) -> None:
    for reading, expected in (("replace", "0.0.0.0,10.0.0.3"), ("append", "0.0.0.0,10.0.0.1,10.0.0.3")):
        ex, account = exchange(tmp_path / reading, edit_ip=reading)
        key = str(ex.create_special_key(account, "k", None, "10.0.0.1", None, None)["apiKey"])
        ex.edit_ip(account, key, None, "10.0.0.3")
        assert ex.query_special_key(account, key, None)["ip"] == expected


def test_ip_is_listed_with_or_without_the_initial_state_address(tmp_path: Path) -> None:
    for reading, with_ips, without in (("zero-prefix", "0.0.0.0,10.0.0.1", "0.0.0.0"),
                                       ("plain", "10.0.0.1", "0.0.0.0")):
        ex, account = exchange(tmp_path / reading, ip_listing=reading)
        ex.create_special_key(account, "a", None, "10.0.0.1", None, None)
        ex.create_special_key(account, "b", None, None, None, None)
        assert [k["ip"] for k in ex.list_special_keys(account, None)] == [with_ips, without]


@pytest.mark.parametrize(("reading", "code"), [("empty", None), ("-2008", -2008), ("-3026", -3026)])
def test_a_missing_key_is_answered_by_the_dialect(tmp_path: Path, reading: str, code: int | None) -> None:
    ex, account = exchange(tmp_path, missing_key=reading)
    for call in (lambda: ex.query_special_key(account, "N" * 64, None),
                 lambda: ex.edit_ip(account, "N" * 64, None, "10.0.0.1"),
                 lambda: ex.delete_special_key(account, "N" * 64, None, None)):
        if code is None:
            assert call() == {}
        else:
            with pytest.raises(ExchangeError) as refused:
                call()
            assert refused.value.code == code


def test_duplicate_names_allowed_or_refused_and_names_echoed_or_trimmed(tmp_path: Path) -> None:
    ex, account = exchange(tmp_path / "allow")
    ex.create_special_key(account, "desk", None, None, None, None)
    ex.create_special_key(account, "desk", None, None, None, None)
    assert len(ex.list_special_keys(account, None)) == 2
    strict, account2 = exchange(tmp_path / "refuse", duplicate_name="refuse", api_name="trim")
    strict.create_special_key(account2, " desk ", None, None, None, None)
    assert [k["apiName"] for k in strict.list_special_keys(account2, None)] == ["desk"]
    with pytest.raises(ExchangeError) as refused:
        strict.create_special_key(account2, "desk", None, None, None, None)
    assert refused.value.code == -3026
    strict.create_special_key(account2, "desk", "BTCUSDT", None, None, None)  # another scope


@pytest.mark.parametrize(("reading", "spelling"), [("docs", "HMAC_SHA256"), ("upper", "HMAC_SHA256"),
                                                   ("lower", "hmac_sha256")])
def test_type_spelling(tmp_path: Path, reading: str, spelling: str) -> None:
    ex, account = exchange(tmp_path, type_spelling=reading)
    made = ex.create_special_key(account, "k", None, None, None, None)
    assert made["type"] == spelling
    assert ex.list_special_keys(account, None)[0]["type"] == spelling


def test_exit_special_key_mode_rules(tmp_path: Path) -> None:
    ex, account = exchange(tmp_path)
    # Not in the mode (no cross margin special key): nothing happens, no cooldown.
    assert ex.exit_special_key_mode(account) == {}
    ex.create_special_key(account, "k", None, None, None, None)
    for flag, words in (("liability", "Repay all liabilities"), ("liquidation", "liquidated")):
        ex.set_account_flags(account.account_id, {flag: True})
        flagged = ex.store.transaction
        with flagged() as tx:
            current = tx.account(account.account_id)
        assert current is not None
        with pytest.raises(ExchangeError, match=words):
            ex.exit_special_key_mode(current)
        ex.set_account_flags(account.account_id, {flag: False})
    pm = ex.create_account("PORTFOLIO_MARGIN_PRO", "HMAC").account
    with pytest.raises(ExchangeError, match="Only Cross Margin Classic"):
        ex.exit_special_key_mode(pm)
    assert ex.exit_special_key_mode(account) == {}
    assert ex.list_special_keys(account, None) == []
    with ex.store.transaction() as tx:
        after = tx.account(account.account_id)
    assert after is not None
    with pytest.raises(ExchangeError, match="created again from"):
        ex.create_special_key(after, "k2", None, None, None, None)


def test_api_restrictions_and_account_identity(tmp_path: Path) -> None:
    ex = Exchange(Store(tmp_path))
    made = ex.create_account("CROSS_MARGIN_CLASSIC", "ED25519",
                             restrictions={"enableSpotAndMarginTrading": False})
    restrictions = ex.api_restrictions(made.account)
    assert restrictions["enableSpotAndMarginTrading"] is False and restrictions["ipRestrict"] is True
    uid = ex.account_info(made.account)["uid"]
    assert isinstance(uid, int) and uid > 0
    other = ex.create_account().account
    assert ex.account_info(other)["uid"] != uid
    # The rule the CLI and the admin interface share: known names, true/false values.
    for bad in ({"godMode": True}, {"ipRestrict": "yes"}):
        with pytest.raises(ValueError, match="restrictions are true/false flags"):
            ex.create_account("CROSS_MARGIN_CLASSIC", "ED25519", restrictions=bad)
