"""AccountKeys: one margin account's special keys, as one provider process knows them.

The provider asks this object, never the client, about an account's keys. It owns:
- one listing per scope (the cross margin account, or one isolated pair), listed once and kept
  current by this process's own writes; reads take a listing at most READ_LISTING_TTL_S old;
- "gone", decided by the key list only: Binance documents no "not found" answer;
- the reconciled create: an unknown outcome is looked up in the list before anything is retried;
- adoption, and the IP edit proven by reading the key back;
- the room: every new key this run plans (creates, create-first replacements) is reserved
  against Binance's 30-key limit before the first one is made, so a preview refuses instead of
  an up stopping half way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .binance.errors import (
    AuthenticationError,
    BinanceAPIError,
    InvalidRequest,
    RateLimited,
    ServerError,
    SignatureError,
    TimestampError,
    exchange_text,
)
from .binance.formats import API_KEY_PATTERN
from .errors import (
    AccountKeyLimit,
    AccountMismatch,
    BinanceError,
    DuplicateName,
    ExchangeStateMismatch,
    KeyNotOnExchange,
    MarginSpecialKeysError,
    OutcomeUnknown,
)
from .key_type import KeyType

if TYPE_CHECKING:
    from .binance.client import BinanceClient, CreatedKey, SpecialKey

Scope = str | None

ACCOUNT_KEY_LIMIT = 30  # Binance: normal and special API keys together, per account
CREATE_ATTEMPTS = 3
# How old a listing may be when it serves a read. Short: the reads of one refresh arrive
# together, and an IP edit made by hand minutes earlier must show.
READ_LISTING_TTL_S = 5.0
# Answers that say nothing about whether a key exists: the request itself was refused.
_NOT_ABOUT_THE_KEY = (AuthenticationError, SignatureError, TimestampError, RateLimited, ServerError)


def key_digest(api_key: str) -> str:
    """What a create's `preexisting_keys` records of each apiKey its scope held (never the apiKey
    itself): the orphan audit's proof that a listed key existed before the create."""
    import hashlib

    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def scope_label(symbol: Scope) -> str:
    return f"isolated pair {symbol}" if symbol else "the cross margin account"


@dataclass(frozen=True)
class Room:
    """An account's special keys by scope, and the room they leave under Binance's limit (normal
    and special keys together; Binance lists normal keys nowhere: binance:otherApiKeys declares
    them)."""

    by_scope: dict[Scope, list[SpecialKey]]
    other_api_keys: int

    @property
    def special_keys(self) -> int:
        return sum(len(keys) for keys in self.by_scope.values())

    @property
    def free(self) -> int:
        return max(0, ACCOUNT_KEY_LIMIT - self.special_keys - self.other_api_keys)


@dataclass(frozen=True)
class NewKey:
    """What a create sends. `public_key` None: an HMAC key, whose secret Binance makes."""

    api_name: str
    symbol: Scope
    ips: tuple[str, ...]
    public_key: str | None
    permission_mode: str | None
    allow_duplicate_name: bool = False
    alongside: str | None = None  # the apiKey of the key this one rotates under a window


@dataclass
class _Listing:
    keys: dict[str, SpecialKey]
    listed_at: float


class AccountKeys:
    def __init__(self, client: BinanceClient, other_api_keys: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.other_api_keys = other_api_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._scope_locks: dict[Scope, threading.Lock] = {}
        self._listings: dict[Scope, _Listing] = {}
        self._made: set[str] = set()  # apiKeys this process created
        self._being_replaced: set[str] = set()  # old apiKeys of planned create-first replacements
        self._room_lock = threading.Lock()
        self._room_base: int | None = None  # keys on the account before this run made any
        self._reserved: set[str] = set()
        self._needs_no_room: set[str] = set()  # delete-first replacements
        self._uid: int | None = None
        self._usable_pairs: set[str] | None = None  # isolated pairs, as the room count listed them
        self._uid_lock = threading.Lock()

    # --- listings ---

    def _scope_lock(self, scope: Scope) -> threading.Lock:
        with self._lock:
            return self._scope_locks.setdefault(scope, threading.Lock())

    def listing(self, scope: Scope, *, max_age_s: float | None = None,
                listed_after: float | None = None) -> dict[str, SpecialKey]:
        """The scope's keys by apiKey. Listed once per process and kept current by this
        process's writes; listed again when older than `max_age_s` or not listed after
        `listed_after`. Concurrent callers share one list request (the per-scope lock)."""
        with self._scope_lock(scope):
            with self._lock:
                current = self._listings.get(scope)
            now = self._clock()
            stale = current is None or (
                (max_age_s is not None and now - current.listed_at > max_age_s)
                or (listed_after is not None and current.listed_at < listed_after)
            )
            if stale:
                # Stamped with when the request left, not when it came back: the list shows the
                # exchange as of some moment after `now`, never a later one.
                listed = {k.api_key: k for k in self.client.list_special_keys(scope)}
                current = _Listing(listed, now)
                with self._lock:
                    self._listings[scope] = current
            assert current is not None
            with self._lock:
                return dict(current.keys)

    def preexisting(self, scope: Scope) -> list[str]:
        """Digests of the apiKeys the scope holds now (gitops/orphans.py reads them back). A pair
        the room count found unusable holds none; its create fails with the exchange's reason."""
        if scope is not None:
            if self._usable_pairs is None:
                self._usable_pairs = set(self.client.isolated_symbols())
            if scope not in self._usable_pairs:
                return []
        return sorted(key_digest(api_key) for api_key in self.listing(scope, max_age_s=READ_LISTING_TTL_S))

    def every_key(self) -> list[tuple[Scope, SpecialKey]]:
        """Every special key of the account: the cross margin account and each usable pair,
        each listed afresh."""
        started = self._clock()
        return [(scope, key) for scope in [None, *self.client.isolated_symbols()]
                for key in self.listing(scope, listed_after=started).values()]

    def _record(self, scope: Scope, api_key: str, key: SpecialKey | None) -> None:
        with self._lock:
            listing = self._listings.get(scope)
            if listing is not None:
                if key is None:
                    listing.keys.pop(api_key, None)
                else:
                    listing.keys[api_key] = key

    def find(self, api_key: str, scope: Scope) -> SpecialKey | None:
        """The key as the exchange lists it now, or None when a list taken after this call
        began lacks it: "gone" is never decided from a single answer or an assumed code."""
        started = self._clock()
        key = self.listing(scope, max_age_s=READ_LISTING_TTL_S).get(api_key)
        if key is None:
            key = self.listing(scope, listed_after=started).get(api_key)
        return key

    # --- which account this is ---

    def uid(self) -> int | None:
        """The account's uid, as the exchange says (once per process; concurrent callers share
        one request): provider-key rotation on the same account keeps it; pointing the provider
        at another account changes it."""
        with self._uid_lock:
            if self._uid is None:
                self._uid = self.client.account_uid()
            return self._uid

    def require_same_account(self, expected: Any, what: str) -> None:
        """Refuse to act on a key recorded on another account than the provider's."""
        if expected is None:
            return  # recorded before keys knew their account
        current = self.uid()
        if current is not None and int(expected) != current:
            raise AccountMismatch(
                f"{what}: this key was made on Binance account uid {int(expected)}, but the"
                f" provider now signs for account uid {exchange_text(current)} (binance:apiKey or"
                " binance:baseUrl changed?). Nothing was changed and the key is not called gone:"
                " point the stack back at its account (rotating the provider's own key on the same account is"
                " fine), or remove the key from the state with `pulumi state delete` if you mean"
                " to abandon it."
            )

    # --- room under the account's key limit ---

    def reserve(self, token: str, what: str) -> None:
        """Count one more new key planned in this run; refuse when the account cannot hold them
        all. `token` makes a repeated call for the same plan count once."""
        with self._room_lock:
            if token in self._reserved or token in self._needs_no_room:
                return
            if self._room_base is None:
                self._room_base = self._count_keys()
            base, planned = self._room_base, len(self._reserved)
            if base + self.other_api_keys + planned + 1 > ACCOUNT_KEY_LIMIT:
                room = max(0, ACCOUNT_KEY_LIMIT - base - self.other_api_keys)
                raise AccountKeyLimit(
                    f"{what}: the account has room for {room} new API key(s) ({base} special keys"
                    f" + binance:otherApiKeys={self.other_api_keys} of {ACCOUNT_KEY_LIMIT}), and"
                    f" this run plans {planned + 1}, counting every create and every create-first"
                    " replacement. Set deleteBeforeReplace: true on the keys being replaced"
                    " (the old key goes first), declare fewer new keys, or free keys."
                )
            self._reserved.add(token)

    def plan_replacement(self, old_api_key: str, token: str, what: str, *,
                         delete_first: bool) -> None:
        """A replacement of `old_api_key` by the key `token` names. Pulumi checks the new key again
        as a create afterwards: the same token makes that check count nothing more."""
        # The old key keeps its name until it is deleted: the new one must not be refused as
        # its duplicate.
        with self._lock:
            self._being_replaced.add(old_api_key)
        if delete_first:
            with self._room_lock:
                self._needs_no_room.add(token)
        else:
            self.reserve(token, what)

    def room(self) -> Room:
        """The account's keys, scope by scope (the cross margin account and every usable isolated
        pair), against Binance's limit. The lists go out together (the cross margin one beside the
        query of the pairs): the same requests, one round trip instead of one per scope, while
        every other key's check waits for this count."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="count-keys") as pool:
            cross = pool.submit(self.listing, None)
            symbols = self.client.isolated_symbols()
            self._usable_pairs = set(symbols)
            isolated = list(pool.map(self.listing, symbols))
            by_scope: dict[Scope, list[SpecialKey]] = {None: list(cross.result().values())}
            by_scope.update((symbol, list(keys.values()))
                            for symbol, keys in zip(symbols, isolated, strict=True))
        return Room(by_scope, self.other_api_keys)

    def _count_keys(self) -> int:
        return self.room().special_keys

    # --- the operations ---

    def create(self, new: NewKey) -> CreatedKey:
        """Create once; when the outcome is unknown, look at the key list before any retry."""
        from .binance.client import CreatedKey

        existing = self.listing(new.symbol)
        with self._lock:
            replaced = set(self._being_replaced) | ({new.alongside} if new.alongside else set())
        namesakes = [k for k in existing.values()
                     if k.api_name == new.api_name and k.api_key not in replaced]
        if namesakes and not new.allow_duplicate_name:
            # An apiKey is letters and digits: shown as it is, so it can be pasted; anything else
            # the exchange put there is marked as its words (binance/errors.py exchange_text).
            other = namesakes[0].api_key
            if not API_KEY_PATTERN.match(other):
                other = exchange_text(other)
            raise DuplicateName(
                f"apiName {new.api_name!r} already exists on {scope_label(new.symbol)} (apiKey"
                f" {other}) and this stack does not manage it. Adopt it (adoptApiKey: {other}),"
                " delete it, or set allowDuplicateName: true to have several keys of that name."
            )
        before = set(existing)
        for _ in range(CREATE_ATTEMPTS):
            try:
                created = self.client.create_special_key(
                    new.api_name, new.symbol, list(new.ips), new.public_key, new.permission_mode)
            except InvalidRequest as exc:
                raise self._explain_refusal(exc, new) from None
            except OutcomeUnknown:
                # Only a list taken after the failure came back shows what our request did: one
                # taken while it was in flight (by a concurrent create) may not hold its key yet.
                failed_at = self._clock()
                with self._lock:
                    ours = set(self._made)
                appeared = [
                    k for k in self.listing(new.symbol, listed_after=failed_at).values()
                    if k.api_key not in before and k.api_key not in ours and k.api_name == new.api_name
                ]
            else:
                self._remember(new, created.api_key, created.key_type)
                return created
            if len(appeared) == 1 and new.public_key is not None:
                # Ours: it appeared during our create, under our name, and the exchange makes such
                # a key only from the public key we sent; we hold the private half.
                found = appeared[0]
                self._remember(new, found.api_key, found.key_type)
                return CreatedKey(found.api_key, None, found.key_type)
            # An HMAC key whose secret never reached us is useless, and several new keys cannot
            # be told apart: remove what appeared, then try again.
            for key in appeared:
                self.delete(key.api_key, new.symbol)
        raise OutcomeUnknown(
            f"create special key {new.api_name!r}: the exchange's answer was lost"
            f" {CREATE_ATTEMPTS} times; nothing was left behind on the exchange. Run `pulumi up`"
            " again."
        )

    def _remember(self, new: NewKey, api_key: str, key_type: KeyType | None) -> None:
        from .binance.client import SpecialKey

        with self._lock:
            self._made.add(api_key)
        self._record(new.symbol, api_key,
                     SpecialKey(api_key, new.api_name, new.ips, key_type, new.permission_mode))

    def _explain_refusal(self, exc: InvalidRequest, new: NewKey) -> MarginSpecialKeysError:
        """Name the likely cause of a refused create from our own count and list, never from
        the wording of the exchange's message (which Binance does not document)."""
        try:
            total = self._count_keys() + self.other_api_keys
            namesake = any(k.api_name == new.api_name
                           for k in self.listing(new.symbol, listed_after=0.0).values())
        except BinanceError:
            return exc
        if total >= ACCOUNT_KEY_LIMIT:
            return AccountKeyLimit(
                f"{exc} — the account holds {total} of its {ACCOUNT_KEY_LIMIT} API keys (special"
                f" keys + binance:otherApiKeys={self.other_api_keys}); when replacing, set"
                " deleteBeforeReplace: true to delete the old key first, or free a key"
            )
        if namesake and new.alongside:
            return DuplicateName(
                f"{exc} — {scope_label(new.symbol)} already holds a key named {new.api_name!r}"
                " (the key this rotation keeps through its overlap window), and the exchange"
                " refuses a second one of that name: nothing was changed. Rotate without a window"
                " this time (overlapHours: 0; add deleteBeforeReplace: true if the account has no"
                " room), or give the key a new apiName along with the rotation"
            )
        if namesake:
            return DuplicateName(
                f"{exc} — {scope_label(new.symbol)} already holds a key named {new.api_name!r},"
                " and the exchange may refuse a second one: when replacing a key, set"
                " deleteBeforeReplace: true so the old key goes first"
            )
        return exc

    def adopt(self, api_key: str, scope: Scope, key_type: KeyType, api_name: str) -> SpecialKey:
        """The existing key to bring under management, checked against its declaration."""
        found = self.find(api_key, scope)
        if found is None:
            raise KeyNotOnExchange(
                f"adopt {api_key[:8]}…: {scope_label(scope)} lists no such key; check adoptApiKey"
                " and symbol"
            )
        if found.key_type is not None and found.key_type != key_type:
            raise ExchangeStateMismatch(
                f"adopt {api_key[:8]}…: the exchange holds a {found.key_type.value} key, but keyType"
                f" is {key_type.value}; declare keyType: {found.key_type.value}"
            )
        if found.api_name != api_name:
            raise ExchangeStateMismatch(
                f"adopt {api_key[:8]}…: its apiName on the exchange is {exchange_text(found.api_name)}, not"
                f" {api_name!r}; declare apiName as it is (renaming means a new key)"
            )
        return found

    def edit_ips(self, api_key: str, scope: Scope, declared: Sequence[str]) -> None:
        """Set the key's IP list, and prove from the key list that the exchange holds exactly it:
        Binance does not document whether edit-ip replaces the list or adds to it."""
        from .values import held_ips

        self.client.edit_ip(api_key, scope, list(declared))
        held_key = self.listing(scope, listed_after=self._clock()).get(api_key)
        if held_key is None:
            raise KeyNotOnExchange(
                f"edit the IPs of {api_key[:8]}…: {scope_label(scope)} no longer lists it (deleted"
                " outside this stack?); run `pulumi refresh`, then `pulumi up` creates it again"
            )
        held = held_ips(held_key.ips)
        want = sorted(declared)
        if sorted(held) != want:
            extra = sorted(set(held) - set(want))
            why = (f"it kept {extra}: the exchange adds to a key's list instead of replacing it, so"
                   " addresses can only be removed on Binance's API management page"
                   if extra and set(want) <= set(held) else "")
            raise ExchangeStateMismatch(
                f"after editing the IPs of {api_key[:8]}… the exchange holds {exchange_text(held)}, not the"
                f" declared {want}" + (f"; {why}" if why else "")
            )

    def delete(self, api_key: str, scope: Scope) -> None:
        """Delete by apiKey (by name, Binance deletes every key of that name). An error answer
        counts as done only when a fresh key list lacks the key."""
        try:
            self.client.delete_special_key(api_key, scope)
        except BinanceAPIError as exc:
            if isinstance(exc, _NOT_ABOUT_THE_KEY):
                raise
            if api_key in self.listing(scope, listed_after=self._clock()):
                raise
        self._record(scope, api_key, None)
