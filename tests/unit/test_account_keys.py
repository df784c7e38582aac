"""AccountKeys in process, against a fake exchange client whose answers can be lost after it acts.

The same reconciliation runs against the sandbox over HTTP in tests/provider; here every branch is
driven exactly: the create that happened but whose answer was lost, the one that did not happen,
several namesakes appearing, the HMAC key whose secret never arrived, "gone" decided by the list.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest

from margin_special_keys.account import ACCOUNT_KEY_LIMIT, AccountKeys, NewKey
from margin_special_keys.binance.client import CreatedKey, SpecialKey
from margin_special_keys.binance.errors import InvalidRequest, UnknownApiKey
from margin_special_keys.errors import (
    AccountKeyLimit,
    DuplicateName,
    KeyNotOnExchange,
    NotSent,
    OutcomeUnknown,
)
from margin_special_keys.key_type import KeyType


@dataclass
class FakeClient:
    """An account's special keys in memory; `lose` answers are dropped after the exchange acted."""

    keys: dict[str | None, dict[str, SpecialKey]] = field(default_factory=lambda: {None: {}})
    pairs: list[str] = field(default_factory=list)
    lose_creates: int = 0  # the next N creates act, then their answers are lost
    fail_creates_before: int = 0  # the next N creates are lost before acting
    refuse_creates: bool = False
    unreachable: bool = False
    missing_key_code: bool = True  # delete of an unknown key: -2008, or 200 {} when False
    during_create: Any = None  # called while a create is in flight, before the exchange acts
    calls: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def list_special_keys(self, symbol: str | None) -> list[SpecialKey]:
        self.calls.append(f"list {symbol}")
        if self.unreachable:
            raise NotSent("list special keys: could not connect (nothing was sent)")
        return list(self.keys.setdefault(symbol, {}).values())

    def isolated_symbols(self) -> list[str]:
        self.calls.append("pairs")
        return list(self.pairs)

    def create_special_key(self, api_name: str, symbol: str | None, ips: list[str],
                           public_key: str | None, permission_mode: str | None) -> CreatedKey:
        self.calls.append(f"create {api_name}")
        if self.unreachable:
            raise NotSent("create special key: could not connect (nothing was sent)")
        if self.refuse_creates:
            raise InvalidRequest(400, -3026, "Your input param is invalid.", "create special key")
        if self.during_create is not None:
            hook, self.during_create = self.during_create, None
            hook()
        if self.fail_creates_before:
            self.fail_creates_before -= 1
            raise OutcomeUnknown("create special key: HTTP 503; the outcome is unknown")
        api_key = f"K{next(self._ids):03d}"
        key_type = KeyType.ED25519 if public_key else KeyType.HMAC
        self.keys.setdefault(symbol, {})[api_key] = SpecialKey(api_key, api_name, tuple(ips),
                                                               key_type, permission_mode)
        if self.lose_creates:
            self.lose_creates -= 1
            raise OutcomeUnknown("create special key: the connection was dropped")
        return CreatedKey(api_key, None if public_key else "S" * 64, key_type)

    def delete_special_key(self, api_key: str, symbol: str | None) -> None:
        self.calls.append(f"delete {api_key}")
        if self.keys.setdefault(symbol, {}).pop(api_key, None) is None and self.missing_key_code:
            raise UnknownApiKey(400, -2008, "Invalid Api-Key ID.", "delete special key")

    def edit_ip(self, api_key: str, symbol: str | None, ips: list[str]) -> None:
        self.calls.append(f"edit {api_key}")
        key = self.keys.setdefault(symbol, {}).get(api_key)
        if key is not None:
            self.keys[symbol][api_key] = SpecialKey(api_key, key.api_name, tuple(ips),
                                                    key.key_type, key.permission_mode)


class Clock:
    """Each reading is a second later; `advance` jumps ahead (no real time passes)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def account(client: FakeClient, other_api_keys: int = 1, clock: Clock | None = None) -> AccountKeys:
    return AccountKeys(client, other_api_keys, clock=clock or Clock())  # type: ignore[arg-type]


ED = NewKey("desk", None, ("10.0.0.1",), "PUBLIC PEM", "TRADE")
HMAC = NewKey("desk", None, ("10.0.0.1",), None, None)


def test_a_create_whose_answer_was_lost_is_found_in_the_list_and_not_made_again() -> None:
    client = FakeClient(lose_creates=1)
    created = account(client).create(ED)
    assert list(client.keys[None]) == [created.api_key]
    assert client.calls.count("create desk") == 1


def test_a_create_that_never_happened_is_tried_again_after_the_list_shows_nothing() -> None:
    client = FakeClient(fail_creates_before=2)
    created = account(client).create(ED)
    assert list(client.keys[None]) == [created.api_key] and client.calls.count("create desk") == 3


def test_an_hmac_key_whose_secret_was_lost_is_deleted_and_made_again() -> None:
    client = FakeClient(lose_creates=1)
    created = account(client).create(HMAC)
    assert list(client.keys[None]) == [created.api_key] and created.secret_key is not None
    assert client.calls == ["list None", "create desk", "list None", "delete K000", "create desk"]


def test_three_lost_answers_leave_nothing_behind() -> None:
    client = FakeClient(lose_creates=3)
    with pytest.raises(OutcomeUnknown, match="lost 3 times; nothing was left behind"):
        account(client).create(HMAC)
    assert client.keys[None] == {}


def test_nothing_sent_needs_no_reconciling_list() -> None:
    client = FakeClient()
    keys = account(client)
    keys.listing(None)
    client.unreachable = True
    with pytest.raises(NotSent):
        keys.create(ED)
    assert client.calls == ["list None", "create desk"]


def test_a_namesake_this_stack_does_not_manage_is_refused_unless_allowed() -> None:
    client = FakeClient()
    client.keys[None]["THEIRS"] = SpecialKey("THEIRS", "desk", (), KeyType.HMAC, None)
    with pytest.raises(DuplicateName, match="adoptApiKey: THEIRS"):
        account(client).create(ED)
    keys = account(client)
    keys.plan_replacement("THEIRS", "key:desk", "replacing desk", delete_first=True)
    assert keys.create(ED).api_key != "THEIRS"  # the key being replaced is no stranger


def test_gone_is_decided_by_a_fresh_list_not_an_error_code() -> None:
    for missing_key_code in (True, False):
        client, clock = FakeClient(missing_key_code=missing_key_code), Clock()
        keys = account(client, clock=clock)
        made = keys.create(ED)
        del client.keys[None][made.api_key]  # deleted by hand
        assert keys.find(made.api_key, None) is not None  # a listing seconds old still serves
        clock.advance(60)
        assert keys.find(made.api_key, None) is None
        keys.delete(made.api_key, None)  # done: the list lacks it, whatever the answer
    client = FakeClient()
    keys = account(client)
    made = keys.create(ED)

    def refuse(api_key: str, symbol: str | None) -> None:
        raise UnknownApiKey(400, -2008, "Invalid Api-Key ID.", "delete special key")

    client.delete_special_key = refuse  # type: ignore[method-assign]
    with pytest.raises(UnknownApiKey):  # it still exists: the error stands
        keys.delete(made.api_key, None)


def test_an_ip_edit_is_proven_by_the_list() -> None:
    client = FakeClient()
    keys = account(client)
    made = keys.create(ED)
    keys.edit_ips(made.api_key, None, ["10.0.0.2"])
    assert client.keys[None][made.api_key].ips == ("10.0.0.2",)
    del client.keys[None][made.api_key]
    with pytest.raises(KeyNotOnExchange, match="no longer lists it"):
        keys.edit_ips(made.api_key, None, ["10.0.0.3"])


def test_room_counts_every_planned_key_of_the_run() -> None:
    client = FakeClient(pairs=["BTCUSDT"])
    for i in range(14):
        scope = None if i % 2 else "BTCUSDT"
        client.keys.setdefault(scope, {})[f"E{i}"] = SpecialKey(f"E{i}", f"e{i}", (), None, None)
    keys = account(client)  # 14 special + 1 other: room for 15
    for i in range(14):
        keys.plan_replacement(f"E{i}", f"key:e{i}", f"replacing e{i}", delete_first=False)
        keys.reserve(f"key:e{i}", f"creating e{i}")  # the engine's second check: counted once
    keys.reserve("key:n1", "creating n1")
    keys.reserve("key:n1", "creating n1")  # the same plan counts once
    with pytest.raises(AccountKeyLimit, match="room for 15 new API key.s. .* this run plans 16"):
        keys.reserve("key:n2", "creating n2")
    keys.plan_replacement("E99", "key:e99", "again", delete_first=True)  # deleting first: no room
    keys.reserve("key:e99", "creating e99")
    assert ACCOUNT_KEY_LIMIT == 30


def test_a_refused_create_is_explained_by_our_own_count_not_the_message() -> None:
    client = FakeClient(refuse_creates=True)
    for i in range(29):
        client.keys[None][f"E{i}"] = SpecialKey(f"E{i}", f"e{i}", (), None, None)
    with pytest.raises(AccountKeyLimit, match="holds 30 of its 30 API keys"):
        account(client).create(ED)
    client = FakeClient(refuse_creates=True)
    with pytest.raises(InvalidRequest):  # room enough: the exchange's own words stand
        account(client).create(ED)


def test_a_list_taken_while_the_lost_create_was_in_flight_does_not_hide_its_key() -> None:
    """The race the fault matrix found: a concurrent create lists the scope while ours is in
    flight; our answer is then lost. Reconciling from that older list would miss our key and make
    a second one."""
    client = FakeClient(lose_creates=1)
    keys = account(client)
    keys.listing(None)
    client.during_create = lambda: keys.listing(None, max_age_s=0.0)  # a concurrent reader
    created = keys.create(ED)
    assert list(client.keys[None]) == [created.api_key]  # one key, ours, no duplicate
    assert client.calls.count("create desk") == 1
