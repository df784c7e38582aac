"""MarginSpecialKey, the resource a Pulumi program declares; its provider is
margin_special_key.MarginSpecialKeyProvider (the path every state pickles)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from . import fields
from .key_type import KeyType
from .margin_special_key import MarginSpecialKeyProvider


def _provider_fingerprint() -> str | None:
    from .settings import provider_fingerprint

    return provider_fingerprint(pulumi.runtime.get_config, os.environ)


def _secret(value: pulumi.Input[str] | None) -> pulumi.Output[str] | None:
    return None if value is None else pulumi.Output.secret(value)


def _as_checked(props: dict[str, Any]) -> dict[str, Any]:
    """The declaration as the provider's check returns it (normalized, defaults filled), when
    every value is known here: the engine then holds the same inputs in the program's goal as in
    the state, so a refresh shows no field appearing or disappearing because of a default. A
    declaration with values not known yet (outputs of other resources, secrets) or one check would
    refuse goes as it is; the provider's check says what is wrong with it."""
    import inspect

    given = {k: v for k, v in props.items() if v is not None}
    if any(isinstance(v, pulumi.Output) or inspect.isawaitable(v) for v in given.values()):
        return props
    from . import spec

    checked, failures = spec.check_inputs(given)
    return props if failures else {**dict.fromkeys(props), **checked}


class MarginSpecialKey(Resource, module="binance", name="MarginSpecialKey"):
    """A Binance margin special key (low-latency trading), VIP 7+ accounts.

    Outputs: `api_key`, `key_type`, `public_key`, `private_key` (secret, when generated here),
    `secret_key` (secret, HMAC keys), and the normalized inputs as the exchange holds them.
    """

    # Every field but the adoption ones is an output (the table's types; a test holds them equal).
    api_name: pulumi.Output[str]
    symbol: pulumi.Output[str | None]
    key_type: pulumi.Output[str]
    ip_whitelist: pulumi.Output[list[str]]
    rsa_bits: pulumi.Output[int | None]
    permission_mode: pulumi.Output[str | None]
    public_key: pulumi.Output[str | None]
    keepers: pulumi.Output[dict[str, str] | None]
    rotate_after_days: pulumi.Output[int | None]
    overlap_hours: pulumi.Output[int | None]
    deliver_to: pulumi.Output[list[str] | None]
    allow_duplicate_name: pulumi.Output[bool | None]
    allow_any_ip: pulumi.Output[bool | None]
    delete_before_replace: pulumi.Output[bool | None]
    provider: pulumi.Output[str | None]
    api_key: pulumi.Output[str]
    private_key: pulumi.Output[str | None]
    secret_key: pulumi.Output[str | None]
    key_origin: pulumi.Output[str]
    created_at_ms: pulumi.Output[float]
    previous_api_key: pulumi.Output[str | None]
    previous_private_key: pulumi.Output[str | None]
    previous_secret_key: pulumi.Output[str | None]
    previous_key_type: pulumi.Output[str | None]
    previous_retires_at_ms: pulumi.Output[float | None]
    sealed_credentials: pulumi.Output[str | None]
    account_uid: pulumi.Output[int | None]

    def __init__(
        self,
        resource_name: str,
        *,
        api_name: pulumi.Input[str],
        symbol: pulumi.Input[str] | None = None,
        key_type: pulumi.Input[str] | None = None,
        ip_whitelist: pulumi.Input[list[pulumi.Input[str]]] | None = None,
        rsa_bits: pulumi.Input[int] | None = None,
        permission_mode: pulumi.Input[str] | None = None,
        public_key: pulumi.Input[str] | None = None,
        keepers: pulumi.Input[Mapping[str, pulumi.Input[str]]] | None = None,
        rotate_after_days: pulumi.Input[int] | None = None,
        overlap_hours: pulumi.Input[int] | None = None,
        deliver_to: pulumi.Input[list[pulumi.Input[str]]] | None = None,
        allow_duplicate_name: pulumi.Input[bool] | None = None,
        allow_any_ip: pulumi.Input[bool] | None = None,
        adopt_api_key: pulumi.Input[str] | None = None,
        adopt_private_key: pulumi.Input[str] | None = None,
        adopt_secret_key: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        declared = locals()  # the keyword arguments, by their names in the field table
        props: dict[str, Any] = {name: declared[name] for name in fields.KEYWORDS}
        # Secret inputs, so they are encrypted in state whatever the caller passed.
        props.update({name: _secret(props[name]) for name in fields.SENSITIVE_INPUTS
                      if name.startswith("adopt_")})
        # The provider sees resource options only as inputs: diff needs this one to know whether a
        # replacement makes the new key first (and needs room for it).
        props["delete_before_replace"] = True if opts and opts.delete_before_replace else None
        props["provider"] = _provider_fingerprint()
        props = _as_checked(props)
        props.update({name: None for name in fields.OUTPUT_FIELDS})
        secrets = pulumi.ResourceOptions(additional_secret_outputs=fields.SECRET_OUTPUTS)
        merged = pulumi.ResourceOptions.merge(opts, secrets) if opts else secrets
        super().__init__(MarginSpecialKeyProvider(), resource_name, props, merged)
        # Said on every preview and up, beside the key, for as long as the declaration stands.
        from .settings import ALLOW_BASE_URL_ENV, unusual_endpoint

        base_url = pulumi.runtime.get_config("binance:baseUrl") or os.environ.get("BINANCE_BASE_URL", "")
        if base_url and unusual_endpoint(base_url, os.environ):
            pulumi.log.warn(f"binance:baseUrl {base_url} is not Binance's: allowed by"
                            f" {ALLOW_BASE_URL_ENV}; it sees the provider key and every request",
                            resource=self)
        pulumi.Output.from_input(allow_any_ip).apply(
            lambda v: pulumi.log.warn(
                "allowAnyIp: this trading key has no IP restriction; any address holding its"
                " credentials can trade", resource=self) if v is True else None)
        pulumi.Output.from_input(key_type).apply(
            lambda v: pulumi.log.warn(
                "keyType HMAC: Binance deprecates HMAC keys and recommends Ed25519 (the default);"
                " HMAC secrets are made by the exchange and travel over the network once",
                resource=self) if KeyType.from_config(v) is KeyType.HMAC else None)
