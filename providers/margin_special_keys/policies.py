"""Firm-wide guardrails for MarginSpecialKey: the rules of the CrossGuard policy pack in `policies/`.

Each rule is a plain function of one key's properties (or of every key of a stack) and of its
policy's config, returning the violation messages; `policies()` wraps them in `pulumi_policy`'s
classes, imported there only: the package needs `pulumi-policy` only where the pack runs.

What a rule sees. `pulumi preview` and `up` hand a resource policy the key's inputs after the
provider's check normalized them (`key_type` ED25519, RSA or HMAC; `ip_whitelist` sorted;
`symbol` upper case, absent for cross margin; `permission_mode` only on Ed25519 keys, TRADE by
default), and the stack policy every key's outputs (during a preview, a new key's inputs). Keys
are told apart from other dynamic resources by their type token, `RESOURCE_TYPE`; `__`-prefixed
properties (the pickled provider) are never read. A value the engine does not know yet (during a
preview: the output of another resource) is never a violation: the rule checks what is known and
says nothing of the rest. When the provider's check refused a value, a rule may see it as written:
it then names the field and never shows the value (it may be a secret pasted in the wrong field).

What a message shows: the key's resource name, the field as a stack file spells it (`ipWhitelist`,
`keyType`...), and the offending value only when it is an IP address, a key type, a permission
mode, a symbol or a number of days; never `publicKey`, `adoptPrivateKey`, `adoptSecretKey` or any
output. A policy config the rules cannot read (a CIDR that is not one, a property no policy has,
a mode that is not TRADE or READ) stops the run with an error: a guardrail never runs looser than
it was written. docs/policy-pack.md describes each policy for the people who configure them.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from . import fields
from .errors import InvalidInput
from .key_type import KeyType
from .values import MAX_API_NAME_LENGTH, PERMISSION_MODES, SYMBOL_PATTERN

KEY_TYPES = tuple(k.value for k in KeyType)

if TYPE_CHECKING:
    from pulumi_policy import Policy, ReportViolation, ResourceValidationArgs, StackValidationArgs

RESOURCE_TYPE: Final = "pulumi-python:dynamic/binance:MarginSpecialKey"
PACK_NAME: Final = "margin-special-keys"
PACK_DESCRIPTION: Final = "Firm-wide guardrails for Binance margin special keys (MarginSpecialKey)"

Level = Literal["advisory", "mandatory", "disabled"]
LEVELS: Final = ("advisory", "mandatory", "remediate", "disabled")

# The engine's sentinels for a value not known during a preview, one per kind of value
# (pulumi_policy.proxy; the string one is pulumi.runtime.rpc.UNKNOWN). A test keeps them current.
UNKNOWN_SENTINELS: Final = frozenset({
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
    "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
    "e48ece36-62e2-4504-bad9-02848725956a",  # archive
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
})


class _Unknown:
    """A value the engine does not know yet."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()


class PolicyConfigError(InvalidInput):
    """A policy's config the rules cannot read: the run stops rather than check less than asked."""


def _unknown_errors() -> tuple[type[BaseException], ...]:
    """pulumi_policy's error for reading an unknown value through its property proxies."""
    try:
        from pulumi_policy.proxy import UnknownValueError
    except ImportError:  # plain dicts only, as in the unit tests without the SDK
        return ()
    return (UnknownValueError,)


def plain(value: Any) -> Any:
    """`value` as plain dicts and lists, every unknown (a sentinel string, or an item
    pulumi_policy's proxies refuse to read during a preview) as UNKNOWN."""
    if isinstance(value, str):
        return UNKNOWN if value in UNKNOWN_SENTINELS else value
    unknown = _unknown_errors()
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in list(value):
            try:
                item = value[key]
            except unknown:
                item = UNKNOWN
            out[str(key)] = plain(item)
        return out
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        items: list[Any] = []
        for i in range(len(value)):
            try:
                item = value[i]
            except unknown:
                item = UNKNOWN
            items.append(plain(item))
        return items
    return value


def key_properties(props: Any) -> dict[str, Any]:
    """A key's properties as plain values, without the `__`-prefixed ones (the pickled provider)."""
    values = plain(props) if isinstance(props, Mapping) else {}
    return {k: v for k, v in values.items() if not k.startswith("__")}


def config_name(python_name: str) -> str:
    """A field as the stack file spells it (`ip_whitelist` -> `ipWhitelist`)."""
    return fields.PYTHON_TO_CONFIG.get(python_name) or python_name


# --- reading one key --------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One MarginSpecialKey as a policy sees it: its resource name and its properties."""

    name: str
    props: Mapping[str, Any]

    def get(self, python_name: str) -> Any:
        return self.props.get(python_name)

    def say(self, python_name: str, text: str) -> str:
        return f'key "{self.name}": {config_name(python_name)} {text}'


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _known_choice(value: Any, choices: Iterable[str]) -> str | None:
    """The value upper-cased when it is one of `choices` (safe to show), else None."""
    if isinstance(value, str) and value.strip().upper() in choices:
        return value.strip().upper()
    return None


def key_type(key: Key) -> Any:
    """ED25519, RSA, HMAC, UNKNOWN, or the raw value the check refused (never shown)."""
    value = key.get("key_type")
    if value is UNKNOWN:
        return UNKNOWN
    if value is None or value == "":
        return fields.default("key_type")
    return _known_choice(value, KEY_TYPES) or value


def effective_mode(key: Key) -> Any:
    """What the key may do: TRADE or READ (READ exists for Ed25519 keys only), UNKNOWN, or the
    raw value the check refused."""
    kind = key_type(key)
    if kind is UNKNOWN:
        return UNKNOWN
    if kind != "ED25519":
        return "TRADE"
    value = key.get("permission_mode")
    if value is UNKNOWN:
        return UNKNOWN
    if value is None or value == "":
        return fields.default("permission_mode")
    return _known_choice(value, PERMISSION_MODES) or value


def _address(entry: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address as the exchange matches it (an IPv4-mapped IPv6 address is its IPv4 one),
    or None when the entry is not one."""
    if not isinstance(entry, str):
        return None
    try:
        address = ipaddress.ip_address(entry.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _days(value: Any) -> int | None:
    """A whole number of days (the engine sends numbers as floats), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


# --- reading a policy's config ----------------------------------------------------------------


def _networks(config: Mapping[str, Any]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for i, entry in enumerate(config.get("networks") or []):
        where = f"allowed-ip-networks.networks[{i}]"
        if not isinstance(entry, str):
            raise PolicyConfigError(f"{where}: must be a CIDR string such as 203.0.113.0/24")
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=True))
        except ValueError as exc:
            raise PolicyConfigError(f'{where}: "{entry}" is not a network ({exc}); write it as'
                                    " 203.0.113.0/24, with no bits set after the prefix") from None
    return networks


def _key_types(config: Mapping[str, Any]) -> list[str]:
    allowed = []
    for i, entry in enumerate(config.get("keyTypes") or []):
        choice = _known_choice(entry, KEY_TYPES)
        if choice is None:
            raise PolicyConfigError(f"allowed-key-types.keyTypes[{i}]: {json.dumps(entry)} is not one"
                                    f" of {', '.join(KEY_TYPES)}")
        allowed.append(choice)
    return allowed


@dataclass(frozen=True)
class ModeRule:
    pattern: str
    mode: str


def _mode_rules(config: Mapping[str, Any]) -> list[ModeRule]:
    rules = []
    for i, entry in enumerate(config.get("rules") or []):
        where = f"permission-mode-by-name.rules[{i}]"
        if not isinstance(entry, Mapping) or set(entry) != {"pattern", "mode"}:
            raise PolicyConfigError(f'{where}: must be {{"pattern": "<glob>", "mode": "TRADE" or "READ"}}')
        pattern, mode = entry["pattern"], _known_choice(entry["mode"], PERMISSION_MODES)
        if not isinstance(pattern, str) or not pattern:
            raise PolicyConfigError(f"{where}.pattern: must be a non-empty glob such as *-reader")
        if mode is None:
            raise PolicyConfigError(f"{where}.mode: {json.dumps(entry['mode'])} is not TRADE or READ")
        rules.append(ModeRule(pattern, mode))
    return rules


def _flag(config: Mapping[str, Any], policy: str, name: str) -> bool:
    value = config.get(name, False)
    if not isinstance(value, bool):
        raise PolicyConfigError(f"{policy}.{name}: {json.dumps(value)} is not true or false")
    return value


def _positive_int(config: Mapping[str, Any], policy: str, name: str) -> int | None:
    value = config.get(name)
    if value is None:
        return None
    number = _days(value)
    if number is None or number < 1:
        raise PolicyConfigError(f"{policy}.{name}: {json.dumps(value)} is not a whole number of 1 or more")
    return number


# --- the rules --------------------------------------------------------------------------------


def check_allowed_ip_networks(key: Key, config: Mapping[str, Any]) -> list[str]:
    """Every whitelisted address inside one of `networks`; none configured: nothing to check."""
    networks = _networks(config)
    if not networks:
        return []
    shown = ", ".join(str(n) for n in networks[:6]) + (", ..." if len(networks) > 6 else "")
    ips = key.get("ip_whitelist")
    if ips is UNKNOWN:
        return []
    entries = ips if isinstance(ips, list) else [] if ips is None else [ips]
    if not entries:
        any_ip = key.get("allow_any_ip")
        if _is_true(any_ip):
            return [key.say("allow_any_ip", f"is true with no ipWhitelist: any address may use the"
                                            f" key, and only addresses in {shown} are allowed")]
        return []
    outside, unreadable = [], 0
    for entry in entries:
        if entry is UNKNOWN:
            continue
        address = _address(entry)
        if address is None:
            unreadable += 1
        elif not any(address in network for network in networks):
            outside.append(str(address))
    found = []
    if outside:
        found.append(key.say("ip_whitelist", f"has {', '.join(outside)}, outside the allowed"
                                             f" networks ({shown})"))
    if unreadable:
        found.append(key.say("ip_whitelist", f"has {unreadable} entr"
                                             f"{'y that is' if unreadable == 1 else 'ies that are'}"
                                             " not an IP address (not shown)"))
    return found


def check_allowed_key_types(key: Key, config: Mapping[str, Any]) -> list[str]:
    allowed = _key_types(config)
    kind = key_type(key)
    if kind is UNKNOWN or kind in allowed:
        return []
    if kind not in KEY_TYPES:
        return [key.say("key_type", "is not a key type (value not shown)")]
    return [key.say("key_type", f"{kind} is not allowed here (allowed: {', '.join(allowed) or 'none'})")]


def _matches(rule: ModeRule, text: Any) -> bool:
    return isinstance(text, str) and fnmatch.fnmatchcase(text, rule.pattern)


def check_permission_mode_by_name(key: Key, config: Mapping[str, Any]) -> list[str]:
    """The first rule whose glob matches the key's resource name or its apiName decides the
    mode the key must have."""
    api_name = key.get("api_name")
    for rule in _mode_rules(config):
        if _matches(rule, key.name):
            by = f'its name "{key.name}"'
        elif api_name is UNKNOWN:
            return []  # whether this rule applies is not known yet
        elif _matches(rule, api_name):
            # An apiName the check would refuse (too long, a control character) is not shown.
            fits = len(api_name) <= MAX_API_NAME_LENGTH and api_name.isprintable()
            by = f'its apiName "{api_name}"' if fits else "its apiName (not shown)"
        else:
            continue
        kind, mode = key_type(key), effective_mode(key)
        if kind not in KEY_TYPES or mode is UNKNOWN or mode == rule.mode:
            return []  # (a key type the check refused: that error already names the field)
        why = f'keys matching "{rule.pattern}" (here {by}) must be {rule.mode}'
        if kind != "ED25519":
            return [key.say("key_type", f"{kind} keys always trade (permissionMode is Ed25519 only);"
                                        f" {why}: use keyType ED25519 with permissionMode {rule.mode}")]
        if mode not in PERMISSION_MODES:
            return [key.say("permission_mode", f"is not TRADE or READ (value not shown); {why}")]
        return [key.say("permission_mode", f"is {mode}; {why}")]
    return []


def check_rotation(key: Key, config: Mapping[str, Any]) -> list[str]:
    most = _positive_int(config, "rotation", "maxRotateAfterDays")
    required = _flag(config, "rotation", "requireRotateAfterDays")
    value = key.get("rotate_after_days")
    if value is UNKNOWN:
        return []
    if value is None:
        if not required:
            return []
        bound = f" of at most {most} days" if most else ""
        return [key.say("rotate_after_days", f"is not set; every key here needs one{bound}")]
    days = _days(value)
    if days is None:
        return [key.say("rotate_after_days", "is not a whole number of days (value not shown)")]
    if most is not None and days > most:
        return [key.say("rotate_after_days", f"is {days}; at most {most} days allowed here")]
    return []


def check_no_allow_any_ip(key: Key, config: Mapping[str, Any]) -> list[str]:
    if _is_true(key.get("allow_any_ip")):
        return [key.say("allow_any_ip", "is true: a trading key with no IP restriction is not allowed"
                                        " here; list the addresses that use it in ipWhitelist")]
    return []


def scope_of(key: Key) -> Any:
    """None for the cross margin account, the pair for an isolated one, UNKNOWN."""
    symbol = key.get("symbol")
    if symbol is UNKNOWN:
        return UNKNOWN
    if symbol is None or (isinstance(symbol, str) and symbol.strip() == ""):
        return None
    return symbol.strip().upper() if isinstance(symbol, str) else symbol


def check_max_keys_per_scope(keys: Sequence[Key], config: Mapping[str, Any]) -> list[str]:
    """At most `maxKeys` keys per scope (the cross margin account, or each isolated pair) in one
    stack; a key whose symbol is not known yet is not counted."""
    most = _positive_int(config, "max-keys-per-scope", "maxKeys")
    if most is None:
        return []
    scopes: dict[Any, list[str]] = {}
    for key in keys:
        scope = scope_of(key)
        if scope is not UNKNOWN:
            scopes.setdefault(scope, []).append(key.name)
    found = []
    for scope, names in sorted(scopes.items(), key=lambda kv: (kv[0] is not None, str(kv[0]))):
        if len(names) <= most:
            continue
        where = ("absent (cross margin)" if scope is None
                 else f"{scope} (isolated margin)" if isinstance(scope, str) and SYMBOL_PATTERN.match(scope)
                 else "not a symbol (value not shown)")
        listed = ", ".join(f'"{n}"' for n in sorted(names))
        found.append(f"symbol {where}: {len(names)} keys ({listed}); at most {most} per scope in one stack")
    return found


# --- the policies -----------------------------------------------------------------------------

_STRINGS = {"type": "array", "items": {"type": "string"}}


@dataclass(frozen=True)
class PolicySpec:
    """One policy: its name, what it checks, its default enforcement and its config schema
    (JSON schema per property; the engine fills in each `default` and validates what is given)."""

    name: str
    description: str
    enforcement: Level
    severity: Literal["low", "medium", "high", "critical"]
    properties: dict[str, dict[str, Any]]
    check: Callable[[Key, Mapping[str, Any]], list[str]] | None = None
    check_stack: Callable[[Sequence[Key], Mapping[str, Any]], list[str]] | None = None
    remediation: str = ""
    # Each reads (and so validates) the merged config; a PolicyConfigError says what is wrong.
    readers: tuple[Callable[[Mapping[str, Any]], object], ...] = ()

    def config(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """The policy's config: the schema's defaults, then what was given (as the engine merges
        them). A property the schema does not have is refused: the engine passes it on silently,
        and a misspelt one would leave the rule at its default."""
        given = plain(given or {})
        unknown = sorted(set(given) - set(self.properties) - {"enforcementLevel"})
        if unknown:
            known = ", ".join(self.properties) or "none but enforcementLevel"
            raise PolicyConfigError(f"{self.name}: no property {', '.join(unknown)} (its properties:"
                                    f" {known})")
        merged = {k: v["default"] for k, v in self.properties.items() if "default" in v}
        merged.update({k: v for k, v in given.items() if k != "enforcementLevel"})
        for read in self.readers:
            read(merged)
        return merged


POLICIES: Final[tuple[PolicySpec, ...]] = (
    PolicySpec(
        "allowed-ip-networks",
        "Every address in a margin special key's ipWhitelist is inside one of the firm's networks.",
        "mandatory", "high",
        {"networks": {**_STRINGS, "default": [],
                      "description": "CIDRs such as 203.0.113.0/24 or 2001:db8::/48 (none: nothing is"
                                     " checked); a key with allowAnyIp and no addresses is outside"
                                     " them"}},
        check=check_allowed_ip_networks, readers=(_networks,),
        remediation="Whitelist only addresses inside the allowed networks, or have the networks"
                    " widened in the pack's config on the protected branch.",
    ),
    PolicySpec(
        "allowed-key-types",
        "A margin special key's keyType is one the firm allows.",
        "advisory", "medium",
        {"keyTypes": {"type": "array", "items": {"type": "string", "enum": list(KEY_TYPES)},
                      "default": ["ED25519", "RSA"],
                      "description": "the allowed key types; by default not HMAC (deprecated by"
                                     " Binance)"}},
        check=check_allowed_key_types, readers=(_key_types,),
        remediation="Use keyType ED25519 (the default).",
    ),
    PolicySpec(
        "permission-mode-by-name",
        "A margin special key whose name matches a rule has that rule's permission mode.",
        "mandatory", "high",
        {"rules": {"type": "array", "default": [],
                   "items": {"type": "object", "required": ["pattern", "mode"],
                             "additionalProperties": False,
                             "properties": {"pattern": {"type": "string", "minLength": 1},
                                            "mode": {"type": "string", "enum": list(PERMISSION_MODES)}}},
                   "description": "a list of {pattern, mode}, mode TRADE or READ; pattern is a glob"
                                  " (fnmatch, case-sensitive) matched against the key's resource"
                                  " name and its apiName; the first rule matching either decides"}},
        check=check_permission_mode_by_name, readers=(_mode_rules,),
        remediation="Set permissionMode (Ed25519 keys only), or rename the key.",
    ),
    PolicySpec(
        "rotation",
        "A margin special key rotates at least as often as the firm requires.",
        "mandatory", "medium",
        {"maxRotateAfterDays": {"type": "integer", "minimum": 1,
                                "description": "the longest rotateAfterDays allowed (absent: any)"},
         "requireRotateAfterDays": {"type": "boolean", "default": False,
                                    "description": "every key must set rotateAfterDays"}},
        check=check_rotation,
        readers=(lambda c: _positive_int(c, "rotation", "maxRotateAfterDays"),
                 lambda c: _flag(c, "rotation", "requireRotateAfterDays")),
        remediation="Set rotateAfterDays on the key (at most maxRotateAfterDays).",
    ),
    PolicySpec(
        "no-allow-any-ip",
        "No margin special key is created without an IP restriction (allowAnyIp).",
        "mandatory", "critical", {},
        check=check_no_allow_any_ip,
        remediation="Remove allowAnyIp and list the addresses that use the key in ipWhitelist.",
    ),
    PolicySpec(
        "max-keys-per-scope",
        "A stack holds at most maxKeys margin special keys per scope (cross margin, or each isolated"
        " pair).",
        "mandatory", "medium",
        {"maxKeys": {"type": "integer", "minimum": 1, "default": 30,
                     "description": "keys per scope in one stack; by default 30, Binance's limit for"
                                    " an account (normal and special keys together)"}},
        check_stack=check_max_keys_per_scope,
        readers=(lambda c: _positive_int(c, "max-keys-per-scope", "maxKeys"),),
        remediation="Remove keys from the scope, or have maxKeys raised in the pack's config.",
    ),
)

BY_NAME: Final = {p.name: p for p in POLICIES}


def _key_of(resource_type: str, name: str, props: Any) -> Key | None:
    if resource_type != RESOURCE_TYPE:
        return None
    return Key(name, key_properties(props))


def resource_violations(spec: PolicySpec, resource_type: str, name: str, props: Any,
                        config: Mapping[str, Any] | None = None) -> list[str]:
    """The violations of one resource policy by one resource (none for other resource types)."""
    key = _key_of(resource_type, name, props)
    if key is None or spec.check is None:
        return []
    return spec.check(key, spec.config(config))


def stack_violations(spec: PolicySpec, resources: Iterable[tuple[str, str, Any]],
                     config: Mapping[str, Any] | None = None) -> list[str]:
    """The violations of one stack policy by (type, name, properties) resources."""
    keys = [k for t, n, p in resources if (k := _key_of(t, n, p)) is not None]
    if spec.check_stack is None:
        return []
    return spec.check_stack(keys, spec.config(config))


def _resource_validation(spec: PolicySpec) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in resource_violations(spec, args.resource_type, args.name, args.props,
                                           args.get_config()):
            report_violation(message, None)

    return validate


def _stack_validation(spec: PolicySpec) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [(r.resource_type, r.name, r.props) for r in args.resources]
        for message in stack_violations(spec, resources, args.get_config()):
            report_violation(message, None)

    return validate


def policies() -> list[Policy]:
    """Every policy, as `pulumi_policy` objects for `PolicyPack(PACK_NAME, policies())`."""
    from pulumi_policy import (
        EnforcementLevel,
        PolicyConfigSchema,
        ResourceValidationPolicy,
        Severity,
        StackValidationPolicy,
    )

    built: list[Policy] = []
    for spec in POLICIES:
        common: dict[str, Any] = {
            "enforcement_level": EnforcementLevel(spec.enforcement),
            "config_schema": PolicyConfigSchema(properties=spec.properties),
            "severity": Severity(spec.severity),
            "remediation_steps": spec.remediation,
        }
        if spec.check is not None:
            built.append(ResourceValidationPolicy(spec.name, spec.description,
                                                  validate=_resource_validation(spec), **common))
        else:
            built.append(StackValidationPolicy(spec.name, spec.description,
                                               validate=_stack_validation(spec), **common))
    return built


def markdown_table() -> str:
    """docs/policy-pack.md's table of the policies (a test keeps that copy current)."""
    rows = ["| policy | what it checks | default enforcement | config (default) |", "|---|---|---|---|"]
    for spec in POLICIES:
        config = "; ".join(
            f"`{name}`" + (f" (`{json.dumps(schema['default'])}`)" if "default" in schema else "")
            + f": {schema.get('description', '')}"
            for name, schema in spec.properties.items()) or "none (only `enforcementLevel`)"
        kind = "" if spec.check else " (a stack policy)"
        rows.append(f"| `{spec.name}` | {spec.description}{kind} | {spec.enforcement} | {config} |")
    return "\n".join(rows) + "\n"


# --- a config file, read as the engine reads `--policy-pack-config` ---------------------------


def check_config_file(document: Any) -> list[str]:
    """What is wrong with a `--policy-pack-config` document for this pack. The engine ignores a
    policy name it does not know and a property a schema does not list (the rule then runs on its
    default): a firm's CI runs this on its config files (`python -m margin_special_keys.policies
    check-config FILE...`)."""
    if not isinstance(document, Mapping):
        return ["must be a JSON object of policy name -> enforcement level or config"]
    if isinstance(document.get("version"), (int, float)) and not isinstance(document.get("version"), bool):
        if document["version"] != 2:
            return ['"version" must be 2']
        document = document.get("policies") or {}
        if not isinstance(document, Mapping):
            return ['"policies" must be an object']
    problems = []
    for name, value in document.items():
        if name == "environments":
            continue
        if name != "all" and name not in BY_NAME:
            problems.append(f"{name}: no such policy (policies: all, {', '.join(BY_NAME)})")
            continue
        if isinstance(value, str):
            if value not in LEVELS:
                problems.append(f"{name}: {json.dumps(value)} is not one of {', '.join(LEVELS)}")
            continue
        if not isinstance(value, Mapping):
            problems.append(f"{name}: must be an enforcement level or an object")
            continue
        level = value.get("enforcementLevel")
        if level is not None and level not in LEVELS:
            problems.append(f"{name}.enforcementLevel: {json.dumps(level)} is not one of {', '.join(LEVELS)}")
        if name == "all":
            extra = sorted(set(value) - {"enforcementLevel"})
            if extra:
                problems.append(f"all: only enforcementLevel applies to every policy, not {', '.join(extra)}")
            continue
        try:
            BY_NAME[name].config(value)
        except PolicyConfigError as exc:
            problems.append(str(exc))
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["table"]:
        sys.stdout.write(markdown_table())
        return 0
    if len(args) < 2 or args[0] != "check-config":
        sys.stderr.write("usage: python -m margin_special_keys.policies check-config FILE...\n"
                         "       python -m margin_special_keys.policies table\n")
        return 2
    failed = False
    for path in args[1:]:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            problems = check_config_file(json.loads(text) if text.strip() else {})
        except (OSError, ValueError) as exc:
            problems = [f"cannot read it: {exc}"]
        for problem in problems:
            sys.stderr.write(f"{path}: {problem}\n")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
