"""MarginSpecialKey: a Binance margin special key as a Pulumi dynamic resource.

The provider is thin: validate (spec.py), plan (spec.py), call (binance/client.py), map the
result. Its import path `margin_special_keys.margin_special_key.MarginSpecialKeyProvider` is
pickled by reference into every resource's state (state_format.py): moving or renaming it breaks
refresh and destroy of existing stacks. It holds no state that is pickled; settings and the HTTP
client live only in the provider process, created after `configure`.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from . import fields, sealed, spec, state_format, values
from .account import AccountKeys, NewKey
from .errors import ConfigurationError, MarginSpecialKeysError, WindowStillOpen
from .key_type import KeyType

if TYPE_CHECKING:
    from .settings import ProviderSettings



def _clean(props: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the engine's reserved keys (`__provider`) and empty values."""
    return {k: v for k, v in props.items() if not k.startswith("__") and v is not None}


def _label(props: Mapping[str, Any]) -> str:
    name = props.get("api_name")
    return f"key {name!r}" if isinstance(name, str) and not spec.is_unknown(name) else "this key"


Method = TypeVar("Method", bound=Callable[..., Any])


@dataclass(frozen=True)
class _MadeKey:
    api_key: str
    origin: str  # generated, provided or exchange (HMAC)
    public_key: str | None
    private_key: str | None
    secret_key: str | None


def _one_message(method: Method) -> Method:
    """Pulumi's dynamic provider host prints the traceback of whatever a method raises. Our errors
    are raised again at the method's edge, without their inner frames or any chained library
    exception: the engine shows a two-frame traceback that ends in our message, once per key."""

    @functools.wraps(method)
    def at_the_edge(*args: Any) -> Any:
        try:
            return method(*args)
        except MarginSpecialKeysError as exc:
            error: Exception = exc
        raise error.with_traceback(None) from None

    return cast(Method, at_the_edge)


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
        self._account: AccountKeys | None = None

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

    def _keys(self) -> AccountKeys:
        """The account's keys, one object per provider process (one stack's settings)."""
        with self._lock:
            if self._account is None:
                if self._settings is None:
                    raise ConfigurationError(
                        self._settings_error or "the provider was not configured"
                    )
                from .settings import make_client

                self._account = AccountKeys(make_client(self._settings),
                                            self._settings.other_api_keys)
            return self._account

    # --- check and diff: planning; they reach the exchange only to count the account's room ---

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs, failures = spec.check_inputs(_clean(news))
        # No property is named: the engine would print the property's value beside it, and
        # some values (a private key pasted as publicKey) must never reach a log.
        result = [CheckFailure("", f.python()) for f in failures]
        if self._settings_error is not None:
            result.append(CheckFailure("", self._settings_error))
        elif not result and spec.creates_key(inputs) and (
                not _clean(olds) or spec.overlap_hours(inputs) > 0):
            try:
                if not _clean(olds):
                    # A new key needs room on the account, counted with the run's other plans.
                    # Pulumi also checks a replacement's new key this way, after diff: plan_token
                    # makes it count once.
                    self._keys().reserve(spec.plan_token(inputs), f"creating {_label(inputs)}")
                # Recorded in the inputs, which the engine writes into the state's pending
                # operation before it calls create (or update, which makes a key when it rotates
                # under an overlap window): the orphan audit's proof that no key listed now is
                # the one a killed run made (gitops/orphans.py).
                inputs[state_format.CREATE_PLAN_KEY] = {
                    "preexisting_keys": self._keys().preexisting(inputs.get("symbol")),
                    "planned_at_ms": int(time.time() * 1000)}
            except MarginSpecialKeysError as exc:  # the exchange, or the account's room
                result.append(CheckFailure("", str(exc)))
        return CheckResult(inputs, result)

    @_one_message
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        old, new = _clean(olds), _clean(news)
        plan = spec.plan_diff(old, new, now_ms=int(time.time() * 1000))
        if plan.changed:
            self._keys().require_same_account(old.get("account_uid"), f"plan {_label(old)}")
        if plan.blocked:
            raise WindowStillOpen(f"{_label(old)}: {plan.blocked}")
        delete_first = bool(new.get("delete_before_replace"))
        if (plan.replaces or plan.rotates) and "api_key" in old:
            # A rotation under a window makes its new key in place: it needs room as much as a
            # create-first replacement does, until the previous key retires.
            self._keys().plan_replacement(
                old["api_key"], spec.plan_token(new),
                f"{'rotating' if plan.rotates else 'replacing'} {_label(old)}"
                f" ({', '.join(plan.replaces or plan.rotates)})", delete_first=delete_first,
            )
        return DiffResult(
            # A state pickled by an earlier version's path: one update, nothing sent, rewrites it.
            changes=plan.changed or state_format.pickled_module_is_legacy(olds),
            replaces=plan.replaces,
            delete_before_replace=True if plan.replaces and delete_first else None,
        )

    # --- the operations that reach the exchange ---

    @_one_message
    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = spec.require_valid(_clean(props))
        if "adopt_api_key" in inputs:
            return self._adopt(inputs)
        made = self._make_key(inputs)
        return self._created(inputs, made.api_key, made.origin, made.public_key, made.private_key,
                             made.secret_key, account_uid=self._keys().uid())

    def _make_key(self, inputs: Mapping[str, Any], alongside: str | None = None) -> _MadeKey:
        """A new key on the exchange as declared: its key pair made here (Ed25519, RSA), given
        (publicKey) or made by the exchange (HMAC). `alongside`: the apiKey of the key it rotates
        under an overlap window, which keeps its name until it retires."""
        key_type = KeyType(inputs["key_type"])
        public_key: str | None = inputs.get("public_key")
        private_key: str | None = None
        origin = "provided" if public_key else "exchange"
        if key_type is not KeyType.HMAC and not public_key:
            from . import key_pairs

            pair = key_pairs.generate_ed25519() if key_type is KeyType.ED25519 else key_pairs.generate_rsa(
                int(inputs.get("rsa_bits", 2048))
            )
            public_key, private_key, origin = pair.public_key_pem, pair.private_key_pem, "generated"
        created = self._keys().create(NewKey(
            inputs["api_name"], inputs.get("symbol"), tuple(inputs.get("ip_whitelist", [])),
            public_key, inputs.get("permission_mode"), bool(inputs.get("allow_duplicate_name")),
            alongside=alongside,
        ))
        return _MadeKey(created.api_key, origin, public_key, private_key, created.secret_key)

    @staticmethod
    def _created(inputs: Mapping[str, Any], api_key: str, origin: str, public_key: str | None,
                 private_key: str | None, secret_key: str | None,
                 ips: list[str] | None = None, account_uid: int | None = None) -> CreateResult:
        outs: dict[str, Any] = {
            **{k: v for k, v in inputs.items() if k not in spec.ADOPT_FIELDS},
            "api_key": api_key,
            "key_origin": origin,
            "created_at_ms": int(time.time() * 1000),
        }
        if account_uid is not None:
            outs["account_uid"] = account_uid
        if ips is not None:
            outs["ip_whitelist"] = ips
        for name, value in (("public_key", public_key), ("private_key", private_key),
                            ("secret_key", secret_key)):
            if value:
                outs[name] = value
        return CreateResult(api_key, sealed.resealed(outs))

    def _adopt(self, inputs: Mapping[str, Any]) -> CreateResult:
        """Bring an existing key under management as it is: adoption changes nothing on the
        exchange. Its IPs are recorded as the exchange holds them, so a declared whitelist that
        differs shows in the next preview as an update of that whitelist."""
        api_key: str = inputs["adopt_api_key"]
        found = self._keys().adopt(api_key, inputs.get("symbol"), KeyType(inputs["key_type"]),
                                   inputs["api_name"])
        public_key = private_key = None
        if inputs.get("adopt_private_key"):
            from .key_pairs import read_private_key

            info = read_private_key(inputs["adopt_private_key"])
            public_key, private_key = info.public_pem, info.private_pem
        return self._created(inputs, api_key, "adopted", public_key, private_key,
                             inputs.get("adopt_secret_key"),
                             ips=values.held_ips(found.ips), account_uid=self._keys().uid())

    @_one_message
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        old = _clean(olds)
        inputs = spec.require_valid(_clean(news))
        now = int(time.time() * 1000)
        plan = spec.plan_diff(old, inputs, now_ms=now)
        if plan.blocked:
            raise WindowStillOpen(f"{_label(old)}: {plan.blocked}")
        outs = {k: v for k, v in old.items() if k not in spec.INPUT_FIELDS or k == "public_key"}
        outs.update({k: v for k, v in inputs.items()
                     if k != "public_key" and k not in spec.ADOPT_FIELDS})
        if plan.retires:
            # Its window has ended: deleted by apiKey, and gone only when the key list says so.
            self._keys().delete(old["previous_api_key"], old.get("symbol"))
            for name in fields.PREVIOUS_OUTPUTS:
                outs.pop(name, None)
        if plan.rotates:
            uid = self._keys().uid()  # asked before the key is made: nothing may fail after it
            made = self._make_key(inputs, alongside=old["api_key"])
            # The key that was current stays usable, as the previous one, until its window ends.
            outs.update({
                "previous_api_key": old["api_key"],
                "previous_private_key": old.get("private_key"),
                "previous_secret_key": old.get("secret_key"),
                "previous_key_type": old.get("key_type", KeyType.ED25519.value),
            })
            for name in ("public_key", "private_key", "secret_key"):
                outs.pop(name, None)
            outs.update({"api_key": made.api_key, "key_origin": made.origin, "created_at_ms": now,
                         "account_uid": uid})
            outs.update({k: v for k, v in (("public_key", made.public_key),
                                           ("private_key", made.private_key),
                                           ("secret_key", made.secret_key)) if v})
        else:
            declared = sorted(inputs.get("ip_whitelist", []))
            if sorted(old.get("ip_whitelist", [])) != declared:
                self._keys().edit_ips(old["api_key"], old.get("symbol"), declared)
        retires_at = spec.previous_retires_at_ms(outs, inputs)
        if retires_at is not None:
            outs["previous_retires_at_ms"] = retires_at
        # Sealed afresh on every update: new credentials, a retirement, or other recipients
        # (a change of deliverTo re-seals the same key; it rotates nothing).
        return UpdateResult(sealed.resealed({k: v for k, v in outs.items() if v is not None}))

    @_one_message
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        old = _clean(props)
        keys = self._keys()
        keys.require_same_account(old.get("account_uid"), f"refresh {_label(old)}")
        # The resource's id is the apiKey of the key it first made; after a rotation under a
        # window, `api_key` is the current one.
        current_api_key = old.get("api_key", id_)
        key = keys.find(current_api_key, old.get("symbol"))
        previous = None
        if old.get("previous_api_key"):
            previous = keys.find(old["previous_api_key"], old.get("symbol"))
        outs = dict(old)
        if previous is None:
            for name in fields.PREVIOUS_OUTPUTS:  # retired, or deleted by hand
                outs.pop(name, None)
        if key is None and previous is not None:
            # The current key was deleted outside this stack while the previous one is still in
            # its window: the previous key is the one that works, so it is current again.
            key = previous
            outs.update({"api_key": previous.api_key, "key_type": old.get("previous_key_type"),
                         "private_key": old.get("previous_private_key"),
                         "secret_key": old.get("previous_secret_key")})
            for name in (*fields.PREVIOUS_OUTPUTS, "public_key"):
                outs.pop(name, None)
        if key is None:
            return ReadResult(None, {})  # a fresh key list lacks it: it leaves the state
        outs.update({
            # A key recorded before keys knew their account: it is listed here, so it is here.
            "account_uid": old.get("account_uid", keys.uid()),
            "api_key": key.api_key,
            "api_name": key.api_name,
            "ip_whitelist": values.held_ips(key.ips),
        })
        if key.key_type is not None:  # as the exchange lists it, when it says
            outs["key_type"] = key.key_type.value
        if outs.get("key_type") == KeyType.ED25519 and key.permission_mode:
            outs["permission_mode"] = key.permission_mode
        outs = {k: v for k, v in outs.items() if v is not None}
        if outs.get("api_key") != old.get("api_key") or \
                outs.get("previous_api_key") != old.get("previous_api_key"):
            outs = sealed.resealed(outs)  # what the trading system holds must still work
        inputs = {k: outs[k] for k in spec.INPUT_FIELDS if k in outs}
        if outs.get("key_origin") != "provided":
            inputs.pop("public_key", None)
        return ReadResult(id_, outs, inputs)

    @_one_message
    def delete(self, id_: str, props: dict[str, Any]) -> None:
        # By apiKey, never by name: a name may be shared by keys this stack does not own. During
        # an overlap window the resource holds two keys: both go.
        old = _clean(props)
        self._keys().require_same_account(old.get("account_uid"), f"delete {_label(old)}")
        if old.get("previous_api_key"):
            self._keys().delete(old["previous_api_key"], old.get("symbol"))
        self._keys().delete(old.get("api_key", id_), old.get("symbol"))


__all__ = ["MarginSpecialKeyProvider"]
