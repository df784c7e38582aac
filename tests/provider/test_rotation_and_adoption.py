"""Duplicate names, adoption and the room check for replacements, called as the engine calls them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from margin_special_keys.errors import (
    AccountKeyLimit,
    AccountMismatch,
    DuplicateName,
    ExchangeStateMismatch,
    KeyNotOnExchange,
)
from margin_special_keys.margin_special_key import MarginSpecialKeyProvider
from tests.harness import SandboxAccount, SandboxProcess, same_secret
from tests.provider.conftest import checked, configured


def keypair(kind: str) -> tuple[str, str]:
    private: Any = ed25519.Ed25519PrivateKey.generate() if kind == "ED25519" else (
        rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return (
        private.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
        private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode(),
    )


def test_an_existing_name_is_refused_with_both_ways_out(
    provider: MarginSpecialKeyProvider, sandbox: SandboxProcess, account: SandboxAccount,
    exchange_keys: Callable[[], list[dict[str, Any]]],
) -> None:
    theirs = sandbox.script_client(account).create_special_key("desk", None, [], None, None)
    with pytest.raises(DuplicateName) as raised:
        provider.create(checked(provider, api_name="desk"))
    message = str(raised.value)
    assert theirs.api_key in message and "adoptApiKey" in message and "delete it" in message
    assert theirs.secret_key is not None and theirs.secret_key not in message
    assert [k["apiKey"] for k in exchange_keys()] == [theirs.api_key]

    ours = provider.create(checked(provider, api_name="desk", allow_duplicate_name=True))
    assert len(exchange_keys()) == 2
    provider.delete(ours.id, ours.outs or {})


def test_a_replacement_may_reuse_its_own_name(
    provider: MarginSpecialKeyProvider, exchange_keys: Callable[[], list[dict[str, Any]]],
) -> None:
    old = provider.create(checked(provider, api_name="rot", keepers={"v": "1"}))
    news = checked(provider, api_name="rot", keepers={"v": "2"})
    plan = provider.diff(old.id, old.outs or {}, news)
    assert plan.replaces == ["keepers"]
    new = provider.create(news)
    assert sorted(k["apiKey"] for k in exchange_keys()) == sorted([old.id, new.id])  # both, in between
    provider.delete(old.id, old.outs or {})
    assert [k["apiKey"] for k in exchange_keys()] == [new.id]
    provider.delete(new.id, new.outs or {})


@pytest.mark.parametrize("key_type", ["ED25519", "RSA", "HMAC"])
def test_adoption_changes_nothing_and_the_declared_ips_are_an_update(
    provider: MarginSpecialKeyProvider, sandbox: SandboxProcess, account: SandboxAccount,
    exchange_keys: Callable[[], list[dict[str, Any]]], key_type: str,
) -> None:
    public, private = keypair(key_type) if key_type != "HMAC" else (None, None)
    made = sandbox.script_client(account).create_special_key("legacy", "ETHUSDT", ["10.0.0.9"], public, None)
    material: dict[str, Any] = (
        {"adopt_secret_key": made.secret_key} if key_type == "HMAC" else {"adopt_private_key": private})
    news = checked(provider, api_name="legacy", symbol="ETHUSDT", key_type=key_type,
                   ip_whitelist=["10.0.0.1"], adopt_api_key=made.api_key, **material)
    adopted = provider.create(news)
    outs = adopted.outs or {}
    assert adopted.id == made.api_key and outs["key_origin"] == "adopted"
    # Adoption takes the key as it is; the declared whitelist differs, so the next plan is an
    # update of exactly that whitelist.
    assert [(k["apiKey"], k["ips"]) for k in exchange_keys()] == [(made.api_key, ["10.0.0.9"])]
    assert outs["ip_whitelist"] == ["10.0.0.9"]
    plan = provider.diff(adopted.id, outs, news)
    assert plan.changes and plan.replaces == []
    if key_type == "HMAC":
        assert same_secret(outs["secret_key"], made.secret_key)
    else:
        assert same_secret(outs["private_key"], private) and outs["public_key"] == public
    assert not any(k.startswith("adopt_") for k in outs)

    updated = provider.update(adopted.id, outs, {**news, "ip_whitelist": ["10.0.0.2"]})
    assert (updated.outs or {})["ip_whitelist"] == ["10.0.0.2"]
    provider.delete(adopted.id, outs)
    assert exchange_keys() == []


def test_adoption_refuses_a_mismatch(
    provider: MarginSpecialKeyProvider, sandbox: SandboxProcess, account: SandboxAccount,
) -> None:
    made = sandbox.script_client(account).create_special_key("legacy", None, [], None, None)  # HMAC
    with pytest.raises(ExchangeStateMismatch,
                       match="holds a HMAC key, but keyType is ED25519; declare keyType: HMAC"):
        provider.create(checked(provider, api_name="legacy", adopt_api_key=made.api_key))
    with pytest.raises(ExchangeStateMismatch, match="apiName on the exchange is «legacy»"):
        provider.create(checked(provider, api_name="other", key_type="HMAC", adopt_api_key=made.api_key))
    with pytest.raises(KeyNotOnExchange, match="lists no such key"):
        provider.create(checked(provider, api_name="legacy", key_type="HMAC", adopt_api_key="N" * 64))
    sandbox.script_client(account).delete_special_key(made.api_key, None)


def test_replacement_without_room_fails_at_preview_unless_deleting_first(
    provider: MarginSpecialKeyProvider, sandbox: SandboxProcess, account: SandboxAccount,
    exchange_keys: Callable[[], list[dict[str, Any]]],
) -> None:
    ours = provider.create(checked(provider, api_name="full", keepers={"v": "1"}))
    others = sandbox.script_client(account)
    for i in range(28):  # 28 + ours = 29 special keys, + the account's normal key = 30
        others.create_special_key(f"other-{i}", "BTCUSDT" if i % 2 else None, [], None, None)
    sandbox.reset_requests()
    preview = configured(sandbox.base_url, account)  # the preview is a run, a process, of its own
    with pytest.raises(AccountKeyLimit) as raised:
        preview.diff(ours.id, ours.outs or {}, {**(ours.outs or {}), "keepers": {"v": "2"}})
    assert "room for 0 new API key(s)" in str(raised.value)
    assert "deleteBeforeReplace: true" in str(raised.value)
    assert all(r["method"] == "GET" for r in sandbox.requests_log())  # preview sent no change

    first = checked(provider, api_name="full", keepers={"v": "2"}, delete_before_replace=True)
    plan = provider.diff(ours.id, ours.outs or {}, first)
    assert plan.replaces == ["keepers"] and plan.delete_before_replace is True
    assert len(exchange_keys()) == 29


def test_a_key_knows_its_account_and_another_accounts_provider_refuses_to_touch_it(
    provider: MarginSpecialKeyProvider, sandbox: SandboxProcess, account: SandboxAccount,
    exchange_keys: Callable[[], list[dict[str, Any]]],
) -> None:
    """The demo-takeover scenario: a state pointed at another account (the sandbox's, say) must
    not call the real keys gone, nor delete anything, nor plan as if they were its own."""
    made = provider.create(checked(provider, api_name="real"))
    outs = dict(made.outs or {})
    assert isinstance(outs["account_uid"], int)
    elsewhere = configured(sandbox.base_url, sandbox.create_account("ED25519"))
    for attempt in (lambda: elsewhere.read(made.id, outs),
                    lambda: elsewhere.delete(made.id, outs),
                    lambda: elsewhere.diff(made.id, outs, {**outs, "ip_whitelist": ["10.0.0.2"]})):
        with pytest.raises(AccountMismatch, match=f"made on Binance account uid {outs['account_uid']}"):
            attempt()
    assert [k["apiKey"] for k in exchange_keys()] == [made.id]
    # A provider of the same account (a later run, or the provider's own key rotated: the uid is
    # the account's, not the key's) reads and deletes it as usual.
    again = configured(sandbox.base_url, account)
    assert again.read(made.id, outs).id == made.id
    again.delete(made.id, outs)
    assert exchange_keys() == []
