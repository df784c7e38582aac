"""The stack program: this stack's config -> one MarginSpecialKey per declared key, and the exports.

An infra repo's `__main__.py` is two lines (`from margin_special_keys.program import main`,
`main()`); this repository's is the same. Config (`pulumi config set --path ...`), always in the
`margin-special-keys` namespace whatever the project is called, so the runner reads every repo's
stacks the same way:

  margin-special-keys:keys               list of key specs (docs/configuration.md, "Keys")
  margin-special-keys:defaultIpWhitelist addresses merged into every key's ipWhitelist
  binance:apiKey / binance:privateKey or binance:secretKey / binance:baseUrl  (provider)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import pulumi

from .resource import MarginSpecialKey
from .stack_config import CONFIG_NAMESPACE, DeclaredKey, StackConfigError, parse_keys, plaintext_secrets


def misplaced_keys(config_keys: Iterable[str], read: Callable[[str], Any]) -> list[str]:
    """A key list, or a default whitelist, set under another namespace than the one this program
    reads: `pulumi config set --path 'keys[0].name' …` writes `<project>:keys`, and a program that
    read nothing there would declare no key, and the next `up` would delete every one."""
    misplaced = []
    for key in sorted(config_keys):
        namespace, _, name = key.partition(":")
        if namespace == CONFIG_NAMESPACE or name not in ("keys", "defaultIpWhitelist"):
            continue
        value = read(key)
        if isinstance(value, str) and value.lstrip().startswith("["):
            misplaced.append(
                f"{key} is not read: this program reads {CONFIG_NAMESPACE}:{name}, whatever the"
                f" project is called. Move it: pulumi config set-all --json"
                f" \"{{\\\"{CONFIG_NAMESPACE}:{name}\\\": $(pulumi config get {key} --json)}}\""
                f" && pulumi config rm {key}")
    return misplaced


def _config_keys() -> set[str]:
    """Every key of this stack's config, as the language host hands it to the program."""
    from pulumi.runtime.config import CONFIG, get_config_env

    return set(CONFIG.get()) | set(get_config_env())


def declared_keys() -> list[DeclaredKey]:
    """This stack's keys as its config declares them; a bad config is one error naming each field."""
    config = pulumi.Config(CONFIG_NAMESPACE)
    misplaced = misplaced_keys(_config_keys(), pulumi.runtime.get_config)
    if misplaced:
        raise pulumi.RunError("\n".join(misplaced))
    try:
        raw_keys = config.get_object("keys")
        leaked = plaintext_secrets(pulumi.runtime.get_config, pulumi.runtime.is_config_secret, raw_keys)
        try:
            declared = parse_keys(raw_keys, config.get_object("defaultIpWhitelist"))
        except StackConfigError as exc:
            raise StackConfigError(leaked + exc.problems) from None
        if leaked:
            raise StackConfigError(leaked)
    except StackConfigError as exc:
        raise pulumi.RunError(str(exc)) from None
    return declared


def _exported(outputs: list[Any], symbol: str | None) -> dict[str, Any]:
    return {"apiKey": outputs[0], "keyType": outputs[1], "symbol": symbol, "ipWhitelist": outputs[2]}


def _credentials_of(outputs: list[Any]) -> dict[str, Any]:
    """A key's credentials for its trading system: the current key and, during an overlap window,
    the previous one with the moment it retires."""
    current: dict[str, Any] = {k: x for k, x in {"apiKey": outputs[0], "privateKey": outputs[1],
                                                 "secretKey": outputs[2]}.items() if x is not None}
    previous_api_key, previous_private_key, previous_secret_key, retires_at_ms = outputs[3:7]
    if previous_api_key:
        from .spec import utc

        current["previous"] = {k: x for k, x in {
            "apiKey": previous_api_key, "privateKey": previous_private_key,
            "secretKey": previous_secret_key, "retiresAtMs": retires_at_ms,
            "retiresAt": utc(retires_at_ms) if isinstance(retires_at_ms, (int, float)) else None,
        }.items() if x is not None}
    return current


def _credential_outputs(r: MarginSpecialKey) -> list[Any]:
    return [r.api_key, r.private_key, r.secret_key, r.previous_api_key, r.previous_private_key,
            r.previous_secret_key, r.previous_retires_at_ms]


def main() -> dict[str, MarginSpecialKey]:
    """Declare this stack's keys and export them; returns the resources by key name."""
    declared = declared_keys()
    resources = {
        key.name: MarginSpecialKey(
            key.name,
            **key.args,
            opts=pulumi.ResourceOptions(
                delete_before_replace=key.options.get("delete_before_replace"),
                protect=key.options.get("protect"),
            ),
        )
        for key in declared
    }
    # The symbol as declared, not as an output: a cross margin key has no `symbol` output, and an
    # absent output is unknown during preview, which would show every no-change preview as `~ keys`.
    symbols = {key.name: key.args.get("symbol") for key in declared}  # checked: upper case
    pulumi.export("keys", {
        name: pulumi.Output.all(r.api_key, r.key_type, r.ip_whitelist).apply(
            functools.partial(_exported, symbol=symbols[name]))
        for name, r in resources.items()
    })
    credentials: dict[str, pulumi.Output[dict[str, str]]] = {
        name: pulumi.Output.secret(
            pulumi.Output.all(*_credential_outputs(r)).apply(_credentials_of))
        for name, r in resources.items()
    }
    # One secret output per key, so a trading system's StackReference takes only its own:
    # `StackReference(...).get_output("credentials-<name>")`.
    for name, secret in credentials.items():
        pulumi.export(f"credentials-{name}", secret)
    # Sealed to the key's own trading systems (deliverTo): not a secret, since only their age
    # identities open it; a pipeline may publish it (`gitops up --deliver DIR` writes each one).
    for key in declared:
        if key.args.get("deliver_to"):
            pulumi.export(f"sealed-{key.name}", resources[key.name].sealed_credentials)
    # Every key in one output: kept for compatibility with consumers written before the above.
    pulumi.export("credentials", pulumi.Output.secret(credentials))
    return resources
