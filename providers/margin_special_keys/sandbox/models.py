"""The rules of the exchange: accounts, API keys, special keys, quotas and rate limits.

This module knows nothing of HTTP. Each public method of `Exchange` is one operation of the
special-key API family, taking parsed values and returning the JSON-ready answer, or raising an
`ExchangeError` with Binance's code. Where Binance's documentation is silent the policy is the one
written in shared/reference/binance-special-key-api.md and is named in a comment.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from . import errors
from .dialects import Dialect
from .store import Account, ApiKey, Store, Transaction

# Cross Margin Pro was sunset on 2026-04-13 (margin change log): no such accounts remain.
ACCOUNT_TYPES = ("CROSS_MARGIN_CLASSIC", "PORTFOLIO_MARGIN", "PORTFOLIO_MARGIN_PRO")
KEY_TYPES = {"HMAC": "HMAC_SHA256", "RSA": "RSA", "ED25519": "Ed25519"}
DEFAULT_ISOLATED_SYMBOLS = ("BTCUSDT", "ETHUSDT")
MAX_KEYS_PER_ACCOUNT = 30  # normal and special keys together
MAX_IPS_PER_KEY = 30
NO_IP = "0.0.0.0"  # how Binance shows a key with no IP restriction
DEFAULT_UID_WEIGHT_LIMIT = 180000
SPECIAL_KEY_COOLDOWN_MS = 24 * 3600 * 1000
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9]{2,20}$")
MAX_API_NAME_LENGTH = 128  # not documented by Binance; a bound keeps the sandbox honest about input
KEY_ALPHABET = string.ascii_letters + string.digits
# Margin special key FAQ: a special key "is only applicable with '/api' endpoints", never /sapi.
SPECIAL_KEY_PATH_PREFIX = "/api/"
# Create Special Key docs: permissionMode READ is "READ for USER_DATA, FIX_API_READ_ONLY".
READ_MODE_SECURITY = frozenset({"USER_DATA"})
# The account flag of the address a loopback caller stands for (the sandbox's administration).
CALLER_ADDRESS_FLAG = "callerAddress"


def now_ms() -> int:
    return int(time.time() * 1000)


def new_key_string() -> str:
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(64))


@dataclass(frozen=True)
class NewAccount:
    account: Account
    api_key: str
    secret_key: str | None
    private_key_pem: str | None

    def credentials(self) -> dict[str, str]:
        out = {"accountId": self.account.account_id, "apiKey": self.api_key}
        if self.secret_key is not None:
            out["secretKey"] = self.secret_key
        if self.private_key_pem is not None:
            out["privateKey"] = self.private_key_pem
        return out


class RateLimiter:
    """UID weight per minute, counted per endpoint, as Binance counts /sapi UID limits: in
    calendar minutes. `window_ms` (a test knob, never Binance's behaviour) makes each account's
    windows that long and starts them at its first request, so a test's burst can neither
    straddle two windows nor wait out a whole minute."""

    def __init__(self, limit: int = DEFAULT_UID_WEIGHT_LIMIT, window_ms: int | None = None) -> None:
        self.limit = limit
        self.window_ms = window_ms
        self._used: dict[tuple[str, str, int], int] = {}
        self._origin: dict[str, int] = {}  # account -> the start of its first window (window_ms)
        self._lock = threading.Lock()

    def charge(self, account_id: str, endpoint: str, weight: int, at_ms: int) -> int:
        with self._lock:
            length = self.window_ms or 60000
            origin = self._origin.setdefault(account_id, at_ms) if self.window_ms else 0
            window = (at_ms - origin) // length
            key = (account_id, endpoint, window)
            used = self._used.get(key, 0)
            if used + weight > self.limit:
                left_ms = length - (at_ms - origin) % length
                raise errors.too_many_requests(self.limit, retry_after=max(1, (left_ms + 999) // 1000))
            self._used = {k: v for k, v in self._used.items() if k[0] != account_id or k[2] >= window - 1}
            self._used[key] = used + weight
            return used + weight


def parse_ips(raw: str | None, *, required: bool) -> tuple[str, ...]:
    if raw is None or raw == "":
        if required:
            raise errors.mandatory_missing("ip")
        return ()
    entries = [e.strip() for e in raw.split(",")]
    if entries == [NO_IP]:
        return ()
    if len(entries) > MAX_IPS_PER_KEY:
        raise errors.invalid_input(f"At most {MAX_IPS_PER_KEY} IPs per API key; got {len(entries)}.")
    out: list[str] = []
    for entry in entries:
        if not entry:
            raise errors.invalid_input("Empty entry in ip.")
        if not re.fullmatch(r"[0-9A-Fa-f.:]+", entry):
            raise errors.illegal_characters("ip")
        try:
            address = ipaddress.ip_address(entry)
        except ValueError:
            raise errors.invalid_input(f"'{entry}' is not an IP address.") from None
        text = str(address)
        if text not in out:
            out.append(text)
    return tuple(out)


def _ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as a whitelist holds it (IPv4-mapped IPv6 as IPv4), or None if not one."""
    try:
        address = ipaddress.ip_address((text or "").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_public_key(pem: str) -> tuple[str, str]:
    """Binance's key type of a PKCS#8 (SubjectPublicKeyInfo) PEM, and the PEM as stored."""
    if "-----BEGIN PUBLIC KEY-----" not in pem:
        raise errors.invalid_input("publicKey must be a PKCS#8 PEM (BEGIN PUBLIC KEY).")
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError:
        raise errors.invalid_input("publicKey could not be parsed.") from None
    if isinstance(key, ed25519.Ed25519PublicKey):
        key_type = "Ed25519"
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size not in (2048, 4096):
            raise errors.invalid_input("RSA publicKey must be 2048 or 4096 bits.")
        key_type = "RSA"
    else:
        raise errors.invalid_input("publicKey must be an Ed25519 or RSA key.")
    stored = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return key_type, stored


# The provider key's restrictions (GET /sapi/v1/account/apiRestrictions) of a new account.
DEFAULT_RESTRICTIONS: dict[str, Any] = {
    "ipRestrict": True,
    "enableReading": True,
    "enableSpotAndMarginTrading": True,
    "enableMargin": True,
    "enableWithdrawals": False,
    "enableInternalTransfer": False,
    "permitsUniversalTransfer": False,
    "enableFutures": False,
    "enableVanillaOptions": False,
    "enablePortfolioMarginTrading": False,
}


def describe(key: ApiKey, dialect: Dialect | None = None) -> dict[str, object]:
    dialect = dialect or Dialect()
    ips = list(key.ips)
    if dialect.ip_listing == "zero-prefix" or not ips:
        ips = [NO_IP, *ips]  # the Query Special Key docs' example: "0.0.0.0,192.168.0.1,..."
    return {
        "apiName": key.api_name,
        "apiKey": key.api_key,
        "ip": ",".join(ips),
        "type": dialect.spell_type(key.key_type),
        "permissionMode": key.permission_mode,
    }


class Exchange:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], int] = now_ms,
        rate_limiter: RateLimiter | None = None,
        max_keys_per_account: int = MAX_KEYS_PER_ACCOUNT,
        dialect: Dialect | None = None,
    ) -> None:
        self.dialect = dialect or Dialect()
        self.store = store
        self.clock = clock
        self.rate_limiter = rate_limiter or RateLimiter()
        # Binance's limit is 30; benchmarks raise it to measure larger stacks on one account.
        self.max_keys_per_account = max_keys_per_account

    # --- accounts (the sandbox's own administration, not a Binance endpoint) ---

    def create_account(
        self,
        account_type: str = "CROSS_MARGIN_CLASSIC",
        key_type: str = "HMAC",
        isolated_symbols: tuple[str, ...] = DEFAULT_ISOLATED_SYMBOLS,
        restrictions: dict[str, Any] | None = None,
    ) -> NewAccount:
        if account_type not in ACCOUNT_TYPES:
            raise ValueError(f"account type must be one of {', '.join(ACCOUNT_TYPES)}")
        if key_type not in KEY_TYPES:
            raise ValueError(f"key type must be one of {', '.join(KEY_TYPES)}")
        for symbol in isolated_symbols:
            if not SYMBOL_PATTERN.match(symbol):
                raise ValueError(f"isolated symbol {symbol!r} is not a symbol")
        restrictions = dict(restrictions or {})
        if set(restrictions) - set(DEFAULT_RESTRICTIONS) or not all(
                isinstance(v, bool) for v in restrictions.values()):
            raise ValueError("restrictions are true/false flags of " + ", ".join(DEFAULT_RESTRICTIONS))
        flags: dict[str, Any] = {
            "uid": secrets.randbelow(9 * 10**8) + 10**8,
            "restrictions": {**DEFAULT_RESTRICTIONS, **restrictions},
        }
        account = Account(uuid.uuid4().hex[:16], account_type, tuple(isolated_symbols), 0, flags)
        secret_key = private_pem = public_pem = None
        if key_type == "HMAC":
            secret_key = new_key_string()
        else:
            private = ed25519.Ed25519PrivateKey.generate() if key_type == "ED25519" else (
                rsa.generate_private_key(public_exponent=65537, key_size=2048)
            )
            private_pem = private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
            public_pem = private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode()
        key = ApiKey(
            api_key=new_key_string(),
            account_id=account.account_id,
            is_special=False,
            key_type=KEY_TYPES[key_type],
            secret_key=secret_key,
            public_key=public_pem,
            api_name="default",
            symbol="",
            ips=(),
            permission_mode="TRADE",
            created_ms=self.clock(),
        )
        with self.store.transaction() as tx:
            tx.add_account(account)
            tx.add_key(key)
        return NewAccount(account, key.api_key, secret_key, private_pem)

    def all_special_keys(self) -> list[dict[str, object]]:
        with self.store.transaction() as tx:
            keys = tx.keys(special=True)
        # The admin view: plain addresses and the docs' type spelling, whatever the dialect.
        return [
            {**describe(k, Dialect(ip_listing="plain")), "ips": list(k.ips),
             "accountId": k.account_id, "symbol": k.symbol or None}
            for k in keys
        ]

    def set_account_flags(self, account_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """The sandbox's administration: liability, liquidation, the account key's restrictions."""
        with self.store.transaction() as tx:
            account = tx.account(account_id)
            if account is None:
                raise KeyError(f"no account {account_id}")
            flags = dict(account.flags)
            for name, value in changes.items():
                if name == "restrictions":
                    flags["restrictions"] = {**flags.get("restrictions", DEFAULT_RESTRICTIONS), **value}
                elif name in ("liability", "liquidation"):
                    flags[name] = bool(value)
                else:
                    raise KeyError(f"unknown account flag {name!r}")
            tx.set_flags(account_id, flags)
        return flags

    def set_key_permission_mode(self, api_key: str, mode: str) -> dict[str, Any]:
        """A special key's permission mode changed behind every client's back: Binance offers no
        such call, but a key can be listed otherwise than it was made (a support action, a key
        made again by hand under the same name). For rehearsing drift only."""
        if mode not in ("TRADE", "READ"):
            raise ValueError("permissionMode must be TRADE or READ")
        with self.store.transaction() as tx:
            key = tx.key(api_key)
            if key is None or not key.is_special:
                raise KeyError(f"no special key {api_key}")
            tx.set_permission_mode(api_key, mode)
        return {"apiKey": api_key, "permissionMode": mode}

    def set_caller_address(self, account_id: str, address: str | None) -> dict[str, Any]:
        """The public address a loopback caller of this account stands for, or None to clear it.

        Binance matches a special key's whitelist against the address a request comes from; a
        request to the sandbox comes from loopback, which no whitelist holds. Set per account,
        not for the whole sandbox: one sandbox serves many tests at once (a test session shares
        one), and the address one test sets must not change what another test's keys accept."""
        if address is not None:
            parsed = _ip(address)
            if parsed is None or parsed.is_loopback or parsed.is_unspecified:
                raise ValueError(f"address must be an IP address that is neither loopback nor"
                                 f" unspecified, not {address!r}")
            address = str(parsed)
        with self.store.transaction() as tx:
            account = tx.account(account_id)
            if account is None:
                raise KeyError(f"no account {account_id}")
            flags = dict(account.flags)
            if address is None:
                flags.pop(CALLER_ADDRESS_FLAG, None)
            else:
                flags[CALLER_ADDRESS_FLAG] = address
            tx.set_flags(account_id, flags)
        return {"accountId": account_id, "address": address}

    # --- who is calling ---

    def caller(self, api_key_header: str | None, path: str = "", address: str | None = None,
               security: str = "TRADE") -> tuple[Account, ApiKey]:
        """The account and key behind X-MBX-APIKEY, if that key may call `path` (an endpoint of
        Binance's security type `security`) from `address` (the peer's).

        The account's own key calls every route. A special key calls /api/* routes only, from an
        address on its whitelist (from any, where it has none), and in READ mode USER_DATA routes
        only. An unknown or deleted key and each of these refusals are Binance's -2015."""
        if not api_key_header or not re.fullmatch(r"[A-Za-z0-9]{1,128}", api_key_header):
            raise errors.bad_api_key_format()
        with self.store.transaction() as tx:
            key = tx.key(api_key_header)
            account = tx.account(key.account_id) if key else None
        if key is None or account is None:
            raise errors.rejected_api_key()
        if key.is_special:
            if not path.startswith(SPECIAL_KEY_PATH_PREFIX):
                raise errors.rejected_api_key()
            if key.permission_mode == "READ" and security not in READ_MODE_SECURITY:
                raise errors.rejected_api_key()
            if key.ips and self.seen_address(account, address) not in key.ips:
                raise errors.rejected_api_key()
        return account, key

    @staticmethod
    def seen_address(account: Account, peer: str | None) -> str | None:
        """The address Binance would see this account's request come from: the peer's own, but
        a loopback peer stands for the account's caller address (`set_caller_address`), and
        without one for no address at all (no whitelist can hold loopback)."""
        address = _ip(peer)
        if address is None:
            return None
        if address.is_loopback:
            stands_for = account.flags.get(CALLER_ADDRESS_FLAG)
            return str(stands_for) if stands_for else None
        return str(address)

    def charge(self, account: Account, endpoint: str, weight: int) -> int:
        return self.rate_limiter.charge(account.account_id, endpoint, weight, self.clock())

    # --- the special-key endpoints ---

    def create_special_key(
        self,
        account: Account,
        api_name: str | None,
        symbol: str | None,
        ip: str | None,
        public_key: str | None,
        permission_mode: str | None,
    ) -> dict[str, object]:
        if account.account_type == "PORTFOLIO_MARGIN":
            raise errors.unsupported_operation(
                "Portfolio Margin is an unsupported product, please change the account type"
                " to a supported margin product."
            )
        name = self._api_name(api_name)
        if self.dialect.api_name == "trim":
            name = name.strip()
        scope = self._symbol(account, symbol)
        ips = parse_ips(ip, required=False)
        mode = permission_mode if permission_mode is not None else "TRADE"
        if mode not in ("TRADE", "READ"):
            raise errors.invalid_input("permissionMode must be TRADE or READ.")
        if public_key:
            key_type, stored_public = parse_public_key(public_key)
            secret_key = None
        else:
            key_type, stored_public, secret_key = "HMAC_SHA256", None, new_key_string()
        if key_type != "Ed25519":
            mode = "TRADE"  # permissionMode is only honoured for Ed25519 keys
        key = ApiKey(
            api_key=new_key_string(),
            account_id=account.account_id,
            is_special=True,
            key_type=key_type,
            secret_key=secret_key,
            public_key=stored_public,
            api_name=name,
            symbol=scope,
            ips=ips,
            permission_mode=mode,
            created_ms=self.clock(),
        )
        with self.store.transaction() as tx:
            current = tx.account(account.account_id)
            assert current is not None
            if current.special_key_cooldown_until_ms > self.clock():
                until = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                      time.gmtime(current.special_key_cooldown_until_ms / 1000))
                raise errors.invalid_input(
                    "Special key mode was exited less than 24 hours ago; new special keys can be"
                    f" created again from {until}."
                )
            if self.dialect.duplicate_name == "refuse" and any(
                k.api_name == name for k in tx.keys(account.account_id, special=True, symbol=scope)
            ):
                raise errors.invalid_input("apiName already exists.")
            if tx.count_keys(account.account_id) >= self.max_keys_per_account:
                raise errors.invalid_input(
                    f"The account already has {self.max_keys_per_account} API keys, the most allowed"
                    " (normal and special keys together)."
                )
            tx.add_key(key)
        return {"apiKey": key.api_key, "secretKey": secret_key,
                "type": self.dialect.spell_type(key_type)}

    def query_special_key(
        self, account: Account, api_key: str | None, symbol: str | None
    ) -> dict[str, object]:
        scope = self._symbol(account, symbol)
        with self.store.transaction() as tx:
            key = self._find(tx, account, api_key, scope)
        return {} if key is None else describe(key, self.dialect)

    def list_special_keys(self, account: Account, symbol: str | None) -> list[dict[str, object]]:
        scope = self._symbol(account, symbol)
        with self.store.transaction() as tx:
            keys = tx.keys(account.account_id, special=True, symbol=scope)
        return [describe(k, self.dialect) for k in keys]

    def edit_ip(
        self, account: Account, api_key: str | None, symbol: str | None, ip: str | None
    ) -> dict[str, object]:
        scope = self._symbol(account, symbol)
        ips = parse_ips(ip, required=True)
        with self.store.transaction() as tx:
            key = self._find(tx, account, api_key, scope)
            if key is None:
                return {}
            if self.dialect.edit_ip == "append":
                ips = tuple(dict.fromkeys([*key.ips, *ips]))
                if len(ips) > MAX_IPS_PER_KEY:
                    raise errors.invalid_input(f"At most {MAX_IPS_PER_KEY} IPs per API key.")
            tx.set_ips(key.api_key, ips)
        return {}

    def delete_special_key(
        self, account: Account, api_key: str | None, api_name: str | None, symbol: str | None
    ) -> dict[str, object]:
        scope = self._symbol(account, symbol)
        with self.store.transaction() as tx:
            if api_key:
                # With apiKey given, apiName is ignored.
                key = self._find(tx, account, api_key, scope)
                if key is not None:
                    tx.delete_key(key.api_key)
                return {}
            if not api_name:
                raise errors.mandatory_missing("apiKey")
            named = [
                k for k in tx.keys(account.account_id, special=True, symbol=scope)
                if k.api_name == api_name
            ]
            if not named:
                raise errors.unknown_special_key()
            for key in named:  # every key with that name goes
                tx.delete_key(key.api_key)
        return {}

    def isolated_account(self, account: Account, symbols: str | None) -> dict[str, object]:
        """Query Isolated Margin Account Info, reduced to what this sandbox models: the pairs."""
        wanted = account.isolated_symbols
        if symbols:
            asked = [s.strip() for s in symbols.split(",")]
            if len(asked) > 5:
                raise errors.invalid_input("At most 5 symbols.")
            for symbol in asked:
                self._symbol(account, symbol)
            wanted = tuple(asked)
        return {
            "assets": [{"symbol": s, "isolatedCreated": True, "enabled": True} for s in wanted],
            "totalAssetOfBtc": "0", "totalLiabilityOfBtc": "0", "totalNetAssetOfBtc": "0",
        }

    def exit_special_key_mode(self, account: Account) -> dict[str, object]:
        """Exit Special Key Mode (margin change log, 2026-04-22): Cross Margin Classic only; with
        no liability and no liquidation under way. Deletes every cross margin special key at once
        and starts the 24-hour creation cooldown; an account not in the mode is left as it is."""
        if account.account_type != "CROSS_MARGIN_CLASSIC":
            raise errors.unsupported_operation(
                "Only Cross Margin Classic accounts can exit special key mode."
            )
        if account.flags.get("liability"):
            raise errors.invalid_input("Repay all liabilities before exiting special key mode.")
        if account.flags.get("liquidation"):
            raise errors.invalid_input("The account is being liquidated; try again later.")
        with self.store.transaction() as tx:
            cross = tx.keys(account.account_id, special=True, symbol="")
            if not cross:
                return {}
            for key in cross:
                tx.delete_key(key.api_key)
            tx.set_cooldown(account.account_id, self.clock() + SPECIAL_KEY_COOLDOWN_MS)
        return {}

    def api_restrictions(self, account: Account) -> dict[str, object]:
        """GET /sapi/v1/account/apiRestrictions: the calling key's own permissions."""
        restrictions = dict(account.flags.get("restrictions", DEFAULT_RESTRICTIONS))
        return {**restrictions, "createTime": 1_700_000_000_000, "tradingAuthorityExpirationTime": 0}

    def margin_account(self, account: Account) -> dict[str, object]:
        """Query Cross Margin Account Details, reduced to `accountType`: MARGIN_1 is Cross Margin
        Classic (documented). What Portfolio Margin accounts answer is not documented: the
        sandbox names their type."""
        kind = {"CROSS_MARGIN_CLASSIC": "MARGIN_1"}.get(account.account_type, account.account_type)
        return {"accountType": kind, "borrowEnabled": True, "tradeEnabled": True,
                "transferEnabled": True, "totalAssetOfBtc": "0", "userAssets": []}

    def account_info(self, account: Account, key: ApiKey | None = None) -> dict[str, object]:
        """GET /api/v3/account, reduced to what this sandbox models: the account's uid. Asked
        with a key (the account's own or a special key), the answer is for that key's account
        only, and only while the key exists: another account's key, or a deleted one, is -2015."""
        if key is not None:
            with self.store.transaction() as tx:
                current = tx.key(key.api_key)
            if current is None or current.account_id != account.account_id:
                raise errors.rejected_api_key()
        return {"uid": int(account.flags.get("uid", 0)), "accountType": "SPOT", "canTrade": True,
                "balances": [], "permissions": ["SPOT", "MARGIN"]}

    # --- shared rules ---

    @staticmethod
    def _api_name(api_name: str | None) -> str:
        if api_name is None or api_name.strip() == "":
            raise errors.mandatory_missing("apiName")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in api_name):
            raise errors.illegal_characters("apiName")
        if len(api_name) > MAX_API_NAME_LENGTH:
            raise errors.invalid_input(f"apiName is longer than {MAX_API_NAME_LENGTH} characters.")
        return api_name

    @staticmethod
    def _symbol(account: Account, symbol: str | None) -> str:
        if symbol is None:
            return ""
        if not SYMBOL_PATTERN.match(symbol):
            raise errors.illegal_characters("symbol")
        if symbol not in account.isolated_symbols:
            raise errors.not_a_margin_pair()
        return symbol

    def _find(self, tx: Transaction, account: Account, api_key: str | None,
              scope: str) -> ApiKey | None:
        """The key named, or None where the dialect answers an unknown apiKey with 200 `{}`."""
        if api_key:
            key = tx.key(api_key)
            if (
                key is None
                or not key.is_special
                or key.account_id != account.account_id
                or key.symbol != scope
            ):
                if self.dialect.missing_key == "empty":
                    return None
                if self.dialect.missing_key == "-3026":
                    raise errors.invalid_input("")
                raise errors.unknown_special_key()
            return key
        # Policy: without apiKey, act only when exactly one special key matches.
        candidates = tx.keys(account.account_id, special=True, symbol=scope)
        if len(candidates) != 1:
            raise errors.ambiguous_key("apiKey")
        return candidates[0]
