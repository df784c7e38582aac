"""MarginSpecialKey: a Binance margin special key as a Pulumi dynamic resource.

The provider is thin: validate (spec.py), plan (spec.py), call (binance/client.py), map the
result. Its import path `providers.margin_special_key.MarginSpecialKeyProvider` is pickled by
reference into every resource's state: moving or renaming it breaks refresh and destroy of
existing stacks. It holds no state that is pickled; settings and the HTTP client live only in
the provider process, created after `configure`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from . import spec
from .binance.errors import (
    BinanceError,
    ConfigurationError,
    InvalidRequest,
    KeyNotFound,
    OutcomeUnknown,
)

if TYPE_CHECKING:
    from .binance.client import BinanceClient, CreatedKey, SpecialKey
    from .settings import ProviderSettings

SECRET_OUTPUTS = ["private_key", "secret_key"]
OUTPUT_FIELDS = ("api_key", "private_key", "secret_key", "key_origin", "created_at_ms")
CREATE_ATTEMPTS = 3
ACCOUNT_KEY_LIMIT = 30  # Binance: normal and special API keys together, per account
# How long one listing of a margin account's keys serves the reads of a refresh. Short: the reads
# of one refresh arrive together, and an IP edit made by hand minutes earlier must show.
READ_LISTING_TTL_S = 5.0

# Old apiKeys that a planned create-first replacement will delete once the new key exists. Kept
# in the provider process only (diff runs there just before create), never in the pickle.
_PLANNED_REPLACEMENTS: set[str] = set()


def _clean(props: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the engine's reserved keys (`__provider`) and empty values."""
    return {k: v for k, v in props.items() if not k.startswith("__") and v is not None}


def _scope_label(symbol: str | None) -> str:
    return f"isolated pair {symbol}" if symbol else "the cross margin account"


class ExchangeStateMismatch(BinanceError):
    """The exchange does not hold what was declared or just written to it."""


class DuplicateName(BinanceError):
    """An apiName this resource does not own already exists in the key's scope."""


class AccountKeyLimit(BinanceError):
    """The account cannot hold one more API key."""


class MarginSpecialKeyProvider(ResourceProvider):
    # Nothing secret is captured in the pickle, so __provider need not be a secret blob.
    serialize_as_secret_always = False

    def __init__(self) -> None:
        super().__init__()
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._settings: ProviderSettings | None = None
        self._settings_error: str | None = None
        self._client_instance: BinanceClient | None = None
        # The special keys of each margin account (scope), listed once per provider process and
        # kept current with the keys this process creates or deletes: one list request per scope
        # and run instead of one per create.
        self._scopes: dict[str | None, dict[str, SpecialKey]] = {}
        # What read() last listed per scope, and when (see _recent_listing).
        self._listings: dict[str | None, tuple[float, dict[str, SpecialKey]]] = {}
        # One lock per scope, so concurrent first creates or reads share a single list call.
        self._scope_locks: dict[str | None, threading.Lock] = {}

    # The pickle carries the class by reference and no state at all: never credentials.
    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._init_runtime()

    def configure(self, req: ConfigureRequest) -> None:
        from .settings import read_settings

        try:
            self._settings = read_settings(req.config.get, os.environ)
        except ConfigurationError as exc:
            # Reported by check() as a failure, so preview stops before any request.
            self._settings_error = str(exc)

    def _client(self) -> BinanceClient:
        with self._lock:
            if self._client_instance is None:
                if self._settings is None:
                    raise ConfigurationError(
                        self._settings_error or "the provider was not configured"
                    )
                from .settings import make_client

                self._client_instance = make_client(self._settings)
            return self._client_instance

    # --- check and diff: pure planning; diff reaches the exchange only to check room for a
    # create-first replacement ---

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs, failures = spec.check_inputs(_clean(news))
        result = [CheckFailure(f.property, f.reason) for f in failures]
        if self._settings_error is not None:
            result.append(CheckFailure("binance", self._settings_error))
        return CheckResult(inputs, result)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        old, new = _clean(olds), _clean(news)
        plan = spec.plan_diff(old, new, now_ms=int(time.time() * 1000))
        delete_first = bool(new.get("delete_before_replace"))
        if plan.replaces and not delete_first and "api_key" in old:
            # The new key is made while the old one lives; create() must not take the old key
            # for a stranger holding the same name.
            _PLANNED_REPLACEMENTS.add(old["api_key"])
            self._check_room_for_replacement(old)
        return DiffResult(
            changes=plan.changed, replaces=plan.replaces,
            delete_before_replace=True if plan.replaces and delete_first else None,
        )

    def _check_room_for_replacement(self, old: Mapping[str, Any]) -> None:
        """Fail at preview when a create-first replacement cannot fit under the 30-key limit.

        Binance counts normal and special keys together and lists only special keys, one margin
        account at a time: the cross margin keys and those of every isolated pair are counted,
        plus `binance:otherApiKeys` (default 1: the provider's own key) for the normal keys.
        """
        client = self._client()
        scopes: list[str | None] = [None, *client.isolated_symbols()]
        counted = sum(len(client.list_special_keys(scope)) for scope in scopes)
        assert self._settings is not None
        total = counted + self._settings.other_api_keys
        if total + 1 > ACCOUNT_KEY_LIMIT:
            raise AccountKeyLimit(
                f"replacing {old.get('api_name')!r} creates the new key before deleting the old one,"
                f" but the account already holds {total} of its {ACCOUNT_KEY_LIMIT} API keys"
                f" ({counted} special keys + binance:otherApiKeys={self._settings.other_api_keys})."
                " Set delete_before_replace (deleteBeforeReplace: true in stack config) to delete"
                " first, or free a key."
            )

    # --- the operations that reach the exchange ---

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = spec.require_valid(_clean(props))
        client = self._client()
        if "adopt_api_key" in inputs:
            return self._adopt(client, inputs)
        key_type: str = inputs["key_type"]
        public_key: str | None = inputs.get("public_key")
        private_key: str | None = None
        origin = "provided" if public_key else "exchange"
        if key_type != "HMAC" and not public_key:
            from . import keys

            pair = keys.generate_ed25519() if key_type == "ED25519" else keys.generate_rsa(
                int(inputs.get("rsa_bits", 2048))
            )
            public_key, private_key, origin = pair.public_key_pem, pair.private_key_pem, "generated"

        created = self._create_reconciled(client, inputs, public_key)
        return self._created(inputs, created.api_key, origin, public_key, private_key,
                             created.secret_key)

    @staticmethod
    def _created(inputs: Mapping[str, Any], api_key: str, origin: str, public_key: str | None,
                 private_key: str | None, secret_key: str | None) -> CreateResult:
        outs: dict[str, Any] = {
            **{k: v for k, v in inputs.items() if k not in spec.ADOPT_FIELDS},
            "api_key": api_key,
            "key_origin": origin,
            "created_at_ms": int(time.time() * 1000),
        }
        for name, value in (("public_key", public_key), ("private_key", private_key),
                            ("secret_key", secret_key)):
            if value:
                outs[name] = value
        return CreateResult(api_key, outs)

    def _adopt(self, client: BinanceClient, inputs: Mapping[str, Any]) -> CreateResult:
        """Bring an existing key under management without recreating it."""
        api_key: str = inputs["adopt_api_key"]
        symbol: str | None = inputs.get("symbol")
        try:
            found = client.query_special_key(api_key, symbol)
        except KeyNotFound:
            raise KeyNotFound(404, -2008, f"no special key {api_key[:8]}… on {_scope_label(symbol)}",
                              "adopt special key") from None
        wanted = {"ED25519": "Ed25519", "RSA": "RSA", "HMAC": "HMAC_SHA256"}[inputs["key_type"]]
        if found.key_type != wanted:
            raise ExchangeStateMismatch(
                f"adopt {api_key[:8]}…: the exchange holds a {found.key_type} key, but key_type is"
                f" {inputs['key_type']}; declare the key type it has"
            )
        if found.api_name != inputs["api_name"]:
            raise ExchangeStateMismatch(
                f"adopt {api_key[:8]}…: its apiName on the exchange is {found.api_name!r}, not"
                f" {inputs['api_name']!r}; declare api_name as it is (renaming means a new key)"
            )
        declared = list(inputs.get("ip_whitelist", []))
        if sorted(spec.normalize_ip_list(list(found.ips))) != sorted(declared):
            self._edit_ips(client, api_key, symbol, declared)
        public_key = private_key = None
        if inputs.get("adopt_private_key"):
            from .keys import read_private_key

            info = read_private_key(inputs["adopt_private_key"])
            public_key, private_key = info.pem, info.private_pem
        return self._created(inputs, api_key, "adopted", public_key, private_key,
                             inputs.get("adopt_secret_key"))

    def _create_reconciled(
        self, client: BinanceClient, inputs: Mapping[str, Any], public_key: str | None
    ) -> CreatedKey:
        """Create once; when the outcome is unknown, look at the exchange before any retry."""
        from .binance.client import CreatedKey

        name: str = inputs["api_name"]
        symbol: str | None = inputs.get("symbol")
        existing = self._known_keys(client, symbol)
        namesakes = [k for k in existing if k.api_name == name
                     and k.api_key not in _PLANNED_REPLACEMENTS]
        if namesakes and not inputs.get("allow_duplicate_name"):
            raise DuplicateName(
                f"apiName {name!r} already exists on {_scope_label(symbol)}"
                f" (apiKey {namesakes[0].api_key}) and this stack does not manage it."
                " Adopt it (adopt_api_key / adoptApiKey:"
                f" {namesakes[0].api_key}), delete it, or set allow_duplicate_name"
                " (allowDuplicateName: true) to have several keys of that name."
            )
        before = {k.api_key for k in existing}
        for _ in range(CREATE_ATTEMPTS):
            try:
                created = client.create_special_key(
                    name, symbol, list(inputs.get("ip_whitelist", [])), public_key,
                    inputs.get("permission_mode"),
                )
                self._remember(symbol, created.api_key, name, created.key_type)
                return created
            except InvalidRequest as exc:
                if "API keys" in exc.msg:
                    raise AccountKeyLimit(
                        f"{exc} — the account has no room for another key; when replacing, set"
                        " delete_before_replace (deleteBeforeReplace: true) to delete the old key first"
                    ) from None
                raise
            except OutcomeUnknown:
                appeared = self._appeared(client, before, name, symbol)
            if len(appeared) == 1 and public_key is not None:
                # Ours: it appeared during our create, under our name, and the exchange only
                # made it from the public key we sent; we hold the private half.
                found = appeared[0]
                self._remember(symbol, found.api_key, name, found.key_type)
                return CreatedKey(found.api_key, None, found.key_type)
            # An HMAC key whose secret we never received is useless, and several new keys
            # cannot be told apart: remove what appeared, then try again.
            for key in appeared:
                client.delete_special_key(key.api_key, symbol)
                self._forget(symbol, key.api_key)
        raise OutcomeUnknown(
            f"create special key {name!r}: the exchange's answer was lost {CREATE_ATTEMPTS} times;"
            " nothing was left behind on the exchange. Run `pulumi up` again."
        )

    def _scope_lock(self, symbol: str | None) -> threading.Lock:
        with self._lock:
            return self._scope_locks.setdefault(symbol, threading.Lock())

    def _known_keys(self, client: BinanceClient, symbol: str | None) -> list[SpecialKey]:
        with self._scope_lock(symbol):
            with self._lock:
                known = self._scopes.get(symbol)
            if known is None:
                listed = {k.api_key: k for k in client.list_special_keys(symbol)}
                with self._lock:
                    known = self._scopes.setdefault(symbol, listed)
        with self._lock:
            return list(known.values())

    def _recent_listing(self, client: BinanceClient, symbol: str | None) -> dict[str, SpecialKey]:
        """The scope's keys as listed at most READ_LISTING_TTL_S ago; one list for concurrent reads."""
        with self._scope_lock(symbol):
            listed_at, keys = self._listings.get(symbol, (0.0, {}))
            if time.monotonic() - listed_at > READ_LISTING_TTL_S:
                keys = {k.api_key: k for k in client.list_special_keys(symbol)}
                self._listings[symbol] = (time.monotonic(), keys)
            return keys

    def _remember(self, symbol: str | None, api_key: str, name: str, key_type: str) -> None:
        from .binance.client import SpecialKey

        with self._lock:
            if symbol in self._scopes:
                self._scopes[symbol][api_key] = SpecialKey(api_key, name, (), key_type, None)
        self._changed(symbol)

    def _forget(self, symbol: str | None, api_key: str) -> None:
        with self._lock:
            self._scopes.get(symbol, {}).pop(api_key, None)
        self._changed(symbol)

    def _changed(self, symbol: str | None) -> None:
        """This process changed the scope: the next read lists it afresh."""
        with self._lock:
            self._listings.pop(symbol, None)

    @staticmethod
    def _appeared(
        client: BinanceClient, before: set[str], name: str, symbol: str | None
    ) -> list[SpecialKey]:
        return [
            k for k in client.list_special_keys(symbol)
            if k.api_key not in before and k.api_name == name
        ]

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        old = _clean(olds)
        inputs = spec.require_valid(_clean(news))
        declared = sorted(inputs.get("ip_whitelist", []))
        if sorted(old.get("ip_whitelist", [])) != declared:
            self._edit_ips(self._client(), old["api_key"], old.get("symbol"), declared)
        outs = {k: v for k, v in old.items() if k not in spec.INPUT_FIELDS or k == "public_key"}
        outs.update({k: v for k, v in inputs.items()
                     if k != "public_key" and k not in spec.ADOPT_FIELDS})
        return UpdateResult(outs)

    def _edit_ips(self, client: BinanceClient, api_key: str, symbol: str | None,
                  declared: list[str]) -> None:
        client.edit_ip(api_key, symbol, declared)
        self._changed(symbol)
        # Binance does not document whether edit-ip replaces or appends: prove it replaced.
        held = sorted(spec.normalize_ip_list(list(client.query_special_key(api_key, symbol).ips)))
        if held != sorted(declared):
            raise ExchangeStateMismatch(
                f"after editing the IPs of {api_key[:8]}… the exchange holds {held},"
                f" not the declared {sorted(declared)}"
            )

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        old = _clean(props)
        client, symbol = self._client(), old.get("symbol")
        # A refresh reads every key of a stack at once: one list of the margin account serves
        # them all. A key missing from that list is asked for by apiKey before it is called gone.
        key = self._recent_listing(client, symbol).get(id_)
        if key is None:
            try:
                key = client.query_special_key(id_, symbol)
            except KeyNotFound:
                return ReadResult(None, {})  # gone: it leaves the state
        outs = {
            **old,
            "api_key": key.api_key,
            "api_name": key.api_name,
            "ip_whitelist": spec.normalize_ip_list(list(key.ips)),
        }
        if old.get("key_type") == "ED25519" and key.permission_mode:
            outs["permission_mode"] = key.permission_mode
        inputs = {k: outs[k] for k in spec.INPUT_FIELDS if k in outs}
        if outs.get("key_origin") != "provided":
            inputs.pop("public_key", None)
        return ReadResult(id_, outs, inputs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        # By apiKey, never by name: a name may be shared by keys this stack does not own.
        symbol = _clean(props).get("symbol")
        self._client().delete_special_key(id_, symbol)
        self._forget(symbol, id_)


def _secret(value: pulumi.Input[str] | None) -> pulumi.Output[str] | None:
    return None if value is None else pulumi.Output.secret(value)


class MarginSpecialKey(Resource, module="binance", name="MarginSpecialKey"):
    """A Binance margin special key (low-latency trading), VIP 7+ accounts.

    Outputs: `api_key`, `key_type`, `public_key`, `private_key` (secret, when generated here),
    `secret_key` (secret, HMAC keys), and the normalized inputs as the exchange holds them.
    """

    api_key: pulumi.Output[str]
    api_name: pulumi.Output[str]
    symbol: pulumi.Output[str | None]
    ip_whitelist: pulumi.Output[list[str]]
    key_type: pulumi.Output[str]
    rsa_bits: pulumi.Output[int | None]
    permission_mode: pulumi.Output[str | None]
    public_key: pulumi.Output[str | None]
    private_key: pulumi.Output[str | None]
    secret_key: pulumi.Output[str | None]
    key_origin: pulumi.Output[str]
    created_at_ms: pulumi.Output[float]
    keepers: pulumi.Output[dict[str, str] | None]
    rotate_after_days: pulumi.Output[int | None]
    allow_duplicate_name: pulumi.Output[bool | None]

    def __init__(
        self,
        resource_name: str,
        *,
        api_name: pulumi.Input[str],
        symbol: pulumi.Input[str] | None = None,
        ip_whitelist: pulumi.Input[list[pulumi.Input[str]]] | None = None,
        key_type: pulumi.Input[str] | None = None,
        rsa_bits: pulumi.Input[int] | None = None,
        permission_mode: pulumi.Input[str] | None = None,
        public_key: pulumi.Input[str] | None = None,
        keepers: pulumi.Input[Mapping[str, pulumi.Input[str]]] | None = None,
        rotate_after_days: pulumi.Input[int] | None = None,
        adopt_api_key: pulumi.Input[str] | None = None,
        adopt_private_key: pulumi.Input[str] | None = None,
        adopt_secret_key: pulumi.Input[str] | None = None,
        allow_duplicate_name: pulumi.Input[bool] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "api_name": api_name,
            "symbol": symbol,
            "ip_whitelist": ip_whitelist,
            "key_type": key_type,
            "rsa_bits": rsa_bits,
            "permission_mode": permission_mode,
            "public_key": public_key,
            "keepers": keepers,
            "rotate_after_days": rotate_after_days,
            "adopt_api_key": adopt_api_key,
            # Secret inputs, so they are encrypted in state whatever the caller passed.
            "adopt_private_key": _secret(adopt_private_key),
            "adopt_secret_key": _secret(adopt_secret_key),
            "allow_duplicate_name": allow_duplicate_name,
            # The provider sees resource options only as inputs: diff needs this one to know
            # whether a replacement makes the new key first (and needs room for it).
            "delete_before_replace": True if opts and opts.delete_before_replace else None,
        }
        props.update({name: None for name in OUTPUT_FIELDS})
        secrets = pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)
        merged = pulumi.ResourceOptions.merge(opts, secrets) if opts else secrets
        super().__init__(MarginSpecialKeyProvider(), resource_name, props, merged)
