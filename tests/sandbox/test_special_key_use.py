"""A special key that works, not only one that exists: it signs GET /api/v3/account from an
address on its whitelist, and is refused (-2015) off the list, once deleted, for another account
and on /sapi. The rules in process against `Exchange`, then each key type over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from margin_special_keys.binance.client import BinanceClient
from margin_special_keys.binance.signing import HmacSigner, PrivateKeySigner
from margin_special_keys.sandbox.errors import ExchangeError
from margin_special_keys.sandbox.models import Exchange
from margin_special_keys.sandbox.store import Account, Store
from tests.harness import SandboxProcess
from tests.sandbox.conftest import Wire, error_code

ACCOUNT = "/api/v3/account"
KEY = "/sapi/v1/margin/apiKey"
LIST = "/sapi/v1/margin/api-key-list"
LISTED = "203.0.113.10"  # documentation addresses (RFC 5737)
NOT_LISTED = "203.0.113.99"
LOOPBACK = "127.0.0.1"
REFUSED = {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}


def refused(call: Callable[[], object]) -> None:
    """`call()` is refused as Binance refuses a key, an IP or a permission."""
    with pytest.raises(ExchangeError) as raised:
        call()
    assert (raised.value.status, raised.value.body()) == (401, REFUSED)


@pytest.fixture
def ex(tmp_path: Path) -> Exchange:
    return Exchange(Store(tmp_path))


def special(ex: Exchange, account: Account, ip: str | None = LISTED, public_key: str | None = None,
            mode: str | None = None) -> str:
    return str(ex.create_special_key(account, "desk", None, ip, public_key, mode)["apiKey"])


# --- the rules, in process ---

def test_a_special_key_answers_for_its_account_from_an_address_on_its_whitelist(ex: Exchange) -> None:
    made = ex.create_account()
    key = special(ex, made.account)
    ex.set_caller_address(made.account.account_id, LISTED)
    account, caller = ex.caller(key, ACCOUNT, LOOPBACK, "USER_DATA")
    assert caller.is_special and account.account_id == made.account.account_id
    own = ex.account_info(*ex.caller(made.api_key, ACCOUNT, LOOPBACK, "USER_DATA"))
    assert ex.account_info(account, caller) == own  # the same uid, the same fields
    # A peer that is not loopback (serve --allow-non-loopback) is matched as it is.
    assert ex.caller(key, ACCOUNT, LISTED, "USER_DATA")[1] == caller
    assert ex.caller(key, ACCOUNT, f"::ffff:{LISTED}", "USER_DATA")[1] == caller


def test_an_address_off_the_whitelist_is_refused(ex: Exchange) -> None:
    made = ex.create_account()
    key = special(ex, made.account)
    refused(lambda: ex.caller(key, ACCOUNT, LOOPBACK, "USER_DATA"))  # loopback stands for nothing
    ex.set_caller_address(made.account.account_id, NOT_LISTED)
    refused(lambda: ex.caller(key, ACCOUNT, LOOPBACK, "USER_DATA"))
    refused(lambda: ex.caller(key, ACCOUNT, NOT_LISTED, "USER_DATA"))
    ex.set_caller_address(made.account.account_id, None)
    refused(lambda: ex.caller(key, ACCOUNT, LOOPBACK, "USER_DATA"))


def test_a_key_without_a_whitelist_accepts_any_address(ex: Exchange) -> None:
    made = ex.create_account()
    for ip in (None, "0.0.0.0"):
        key = special(ex, made.account, ip=ip)
        for peer in (LOOPBACK, NOT_LISTED, "2001:db8::1"):
            assert ex.caller(key, ACCOUNT, peer, "USER_DATA")[1].api_key == key


def test_a_deleted_special_key_is_refused(ex: Exchange) -> None:
    made = ex.create_account()
    key = special(ex, made.account)
    ex.set_caller_address(made.account.account_id, LISTED)
    account, held = ex.caller(key, ACCOUNT, LOOPBACK, "USER_DATA")
    ex.delete_special_key(made.account, key, None, None)
    refused(lambda: ex.caller(key, ACCOUNT, LOOPBACK, "USER_DATA"))
    refused(lambda: ex.account_info(account, held))  # a key deleted after it was let in


def test_another_accounts_special_key_is_refused(ex: Exchange) -> None:
    mine, theirs = ex.create_account(), ex.create_account()
    their_key = special(ex, theirs.account)
    ex.set_caller_address(mine.account.account_id, LISTED)
    # The address is this account's: the other account's key is not let in by it...
    refused(lambda: ex.caller(their_key, ACCOUNT, LOOPBACK, "USER_DATA"))
    ex.set_caller_address(theirs.account.account_id, LISTED)
    account, key = ex.caller(their_key, ACCOUNT, LOOPBACK, "USER_DATA")
    # ...it answers for its own account only, never for another one.
    assert account.account_id == theirs.account.account_id
    assert ex.account_info(account, key)["uid"] == ex.account_info(theirs.account)["uid"]
    refused(lambda: ex.account_info(mine.account, key))


def test_a_special_key_is_refused_on_sapi(ex: Exchange) -> None:
    made = ex.create_account()
    key = special(ex, made.account, ip=None)
    for path in (LIST, KEY, "/sapi/v1/account/apiRestrictions", ""):
        with pytest.raises(ExchangeError) as raised:
            ex.caller(key, path, LOOPBACK, "USER_DATA")
        assert (raised.value.status, raised.value.body()) == (401, REFUSED)
    # The account's own key is not a special key: /sapi is its place.
    assert ex.caller(made.api_key, LIST, LOOPBACK)[1].api_key == made.api_key


def test_a_read_special_key_may_read_the_account_and_nothing_more(ex: Exchange) -> None:
    made = ex.create_account()
    pem = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    read = special(ex, made.account, ip=None, public_key=pem, mode="READ")
    trade = special(ex, made.account, ip=None, public_key=pem, mode="TRADE")
    account, key = ex.caller(read, ACCOUNT, LOOPBACK, "USER_DATA")
    assert key.permission_mode == "READ" and ex.account_info(account, key)["uid"]
    refused(lambda: ex.caller(read, "/api/v3/order", LOOPBACK, "TRADE"))
    assert ex.caller(trade, "/api/v3/order", LOOPBACK, "TRADE")[1].api_key == trade


def test_the_caller_address_is_an_address_that_can_stand_on_a_whitelist(ex: Exchange) -> None:
    account_id = ex.create_account().account.account_id
    for bad in ("127.0.0.1", "::1", "0.0.0.0", "example.com", "10.0.0.0/8", ""):
        with pytest.raises(ValueError, match="neither loopback nor unspecified"):
            ex.set_caller_address(account_id, bad)
    with pytest.raises(KeyError):
        ex.set_caller_address("no-such-account", LISTED)
    assert ex.set_caller_address(account_id, f"::ffff:{LISTED}")["address"] == LISTED
    assert ex.set_caller_address(account_id, None)["address"] is None


# --- over HTTP, signed by each key type ---

def private_pem(key_type: str) -> str:
    key = (ed25519.Ed25519PrivateKey.generate() if key_type == "ED25519"
           else rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_of(pem: str) -> str:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, (ed25519.Ed25519PrivateKey, rsa.RSAPrivateKey))
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.mark.parametrize("key_type", ["ED25519", "RSA", "HMAC"])
def test_a_special_key_signs_api_v3_account_over_http(clean_faults: SandboxProcess,
                                                       key_type: str) -> None:
    sandbox = clean_faults
    owner = sandbox.create_account("ED25519")
    wire = Wire(sandbox.base_url, owner)
    normal = wire.send("GET", ACCOUNT)
    assert normal.status_code == 200, normal.text

    params = {"apiName": f"desk-{key_type}", "ip": LISTED}
    pem = None if key_type == "HMAC" else private_pem(key_type)
    if pem is not None:
        params["publicKey"] = public_of(pem)
    created = wire.send("POST", KEY, body_params=params).json()
    credentials = ({"apiKey": created["apiKey"], "secretKey": created["secretKey"]} if pem is None
                   else {"apiKey": created["apiKey"], "privateKey": pem})
    special_wire = Wire(sandbox.base_url, credentials)
    client = BinanceClient(sandbox.base_url, created["apiKey"],
                           HmacSigner(created["secretKey"]) if pem is None else PrivateKeySigner(pem))
    sandbox.set_caller_address(owner["accountId"], LISTED)
    try:
        answer = special_wire.send("GET", ACCOUNT)
        assert answer.status_code == 200, answer.text
        assert answer.json() == normal.json()  # the account's uid, in the normal answer's shape
        assert client.account_uid() == normal.json()["uid"]  # the project's own signer agrees

        on_sapi = special_wire.send("GET", LIST)
        assert (on_sapi.status_code, on_sapi.json()) == (401, REFUSED)

        sandbox.set_caller_address(owner["accountId"], NOT_LISTED)
        off_list = special_wire.send("GET", ACCOUNT)
        assert (off_list.status_code, off_list.json()) == (401, REFUSED)

        sandbox.set_caller_address(owner["accountId"], LISTED)
        deleted = wire.send("DELETE", KEY, {"apiKey": created["apiKey"]})
        assert deleted.status_code == 200, deleted.text
        gone = special_wire.send("GET", ACCOUNT)
        assert (gone.status_code, gone.json()) == (401, REFUSED)
    finally:
        sandbox.set_caller_address(owner["accountId"], None)


def test_the_caller_address_route_refuses_what_no_whitelist_can_hold(sandbox: SandboxProcess) -> None:
    import requests

    token = (sandbox.data_dir / "admin-token").read_text().strip()
    owner = sandbox.create_account("HMAC")
    bad = requests.post(f"{sandbox.base_url}/admin/caller-address", timeout=5,
                        json={"accountId": owner["accountId"], "address": "127.0.0.1"},
                        headers={"X-Sandbox-Admin-Token": token})
    assert bad.status_code == 400 and "loopback" in bad.json()["msg"]
    unknown = requests.post(f"{sandbox.base_url}/admin/caller-address", timeout=5,
                            json={"accountId": "nobody", "address": LISTED},
                            headers={"X-Sandbox-Admin-Token": token})
    assert unknown.status_code == 400
    assert error_code(unknown) == -1000


def test_a_keys_listed_mode_can_be_changed_for_a_drift_rehearsal_only_on_special_keys(ex: Exchange) -> None:
    made = ex.create_account()
    key = special(ex, made.account)
    assert ex.set_key_permission_mode(key, "READ") == {"apiKey": key, "permissionMode": "READ"}
    [listed] = ex.list_special_keys(made.account, None)
    assert listed["permissionMode"] == "READ"
    with pytest.raises(ValueError):
        ex.set_key_permission_mode(key, "ADMIN")
    with pytest.raises(KeyError):
        ex.set_key_permission_mode(made.api_key, "READ")  # the account's own, normal key
