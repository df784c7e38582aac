"""The declared special key: validation, normalization and the diff plan, as pure functions.

Nothing here talks to the network, so every rule is tested without one. Property names are the
resource's Python keyword arguments (snake_case). During `pulumi preview` any input may be the
engine's unknown sentinel; unknowns pass through validation and count as changes in a diff.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import fields
from .binance.formats import API_KEY_PATTERN, HMAC_SECRET_PATTERN, RSA_BITS
from .errors import InvalidInput

# pulumi.runtime.rpc.UNKNOWN: how the dynamic provider host hands over a value not yet known.
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

KEY_TYPES = ("ED25519", "RSA", "HMAC")
PERMISSION_MODES = ("TRADE", "READ")
MAX_IPS = 30
MAX_API_NAME_LENGTH = 128
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9]{2,20}$")
MAX_KEEPERS = 32

# The field lists, from the one table (fields.py): identity fields replace the key, update fields
# are edited in place, state fields touch nothing on the exchange, adopt fields act at create only.
REPLACE_FIELDS = fields.IDENTITY_FIELDS
UPDATE_FIELDS = fields.UPDATE_FIELDS
STATE_FIELDS = fields.STATE_FIELDS
ADOPT_FIELDS = fields.ADOPT_FIELDS
DIFF_FIELDS = fields.DIFF_FIELDS
INPUT_FIELDS = fields.INPUT_FIELDS

Path = tuple[str | int, ...]


def render_path(path: Path, names: Mapping[str, str | None] | None = None) -> str:
    """`("keys", 6, "keepers", "round")` -> `keys[6].keepers.round`; `names` renames the field
    part (Python names to stack-config names)."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            shown = (names or {}).get(part) or part
            text += f".{shown}" if text else shown
    return text


@dataclass(frozen=True)
class Failure:
    """A validation failure at a structured path: the field, then list indexes or map keys."""

    path: Path
    reason: str

    @property
    def property(self) -> str:
        return str(self.path[0])

    def python(self) -> str:
        """`ip_whitelist[2]: "10.0.0.0/8" is a range; list addresses`"""
        return f"{render_path(self.path)}: {self.reason}"

    def config(self, root: Path = ()) -> str:
        """The same at its stack-config path: `keys[6].ipWhitelist[2]: ...`."""
        field_part = (fields.PYTHON_TO_CONFIG.get(self.property, self.property), *self.path[1:])
        return f"{render_path((*root, *field_part))}: {self.reason}"


class InvalidValue(InvalidInput):
    """A value refused at `subpath` below its field (an entry of a list, a key of a map)."""

    def __init__(self, reason: str, subpath: Path = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.subpath = subpath


class InvalidSpec(InvalidInput):
    def __init__(self, failures: list[Failure]) -> None:
        super().__init__("; ".join(f.python() for f in failures))
        self.failures = failures


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value == UNKNOWN


def _absent(value: Any) -> bool:
    return value is None or value == ""


def normalize_ip(entry: Any) -> str:
    """One whitelist entry as the exchange writes it; ValueError says what is wrong with it."""
    if not isinstance(entry, str):
        raise ValueError(f"{entry!r} is not a string; list IP addresses as strings")
    text = entry.strip()
    if "/" in text:
        raise ValueError(f'"{entry}" is a range; list addresses')
    if "%" in text:
        raise ValueError(
            f'"{entry}" is not an IPv4 or IPv6 address Binance can match (drop the %zone index)'
        )
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(
            f'"{entry}" is not an IPv4 or IPv6 address (host names are not accepted)'
        ) from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:203.0.113.10 is 203.0.113.10
    if address.is_unspecified:
        raise ValueError(
            f'"{entry}" is how Binance shows a key without IP restriction; leave the list empty'
            " and set allowAnyIp: true for that instead"
        )
    unusable = ("a loopback address" if address.is_loopback
                else "a link-local address" if address.is_link_local
                else "a multicast address" if address.is_multicast
                else "the broadcast address" if str(address) == "255.255.255.255"
                else "a reserved address" if address.is_reserved else "")
    if unusable:
        raise ValueError(f'"{entry}" is {unusable}: no trading server can call Binance from it')
    return str(address)


def normalize_ip_list(value: Any, merged_from: int = 0) -> list[str] | str:
    """Sorted, without duplicates: order and repetition carry no meaning on the exchange.
    UNKNOWN when an entry is not known yet (preview). `merged_from` entries came from
    defaultIpWhitelist: a count over the limit says so."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise InvalidValue(f"must be a list of IP addresses, got {type(value).__name__}")
    if any(is_unknown(entry) for entry in value):
        return UNKNOWN
    seen: dict[str, ipaddress.IPv4Address | ipaddress.IPv6Address] = {}
    for i, entry in enumerate(value):
        try:
            text = normalize_ip(entry)
        except ValueError as exc:
            raise InvalidValue(str(exc), (i,)) from None
        seen[text] = ipaddress.ip_address(text)
    if len(seen) > MAX_IPS:
        merged = (f" ({len(seen) - merged_from} declared + {merged_from} from defaultIpWhitelist,"
                  " which is merged into every key)" if merged_from else "")
        raise InvalidValue(f"{len(seen)} addresses{merged}; Binance allows at most {MAX_IPS} per key")
    return [text for text, addr in sorted(seen.items(), key=lambda kv: (kv[1].version, kv[1]))]


def held_ips(ips: Any) -> list[str]:
    """The addresses the exchange holds, normalized and sorted like a declaration. An entry we
    would refuse to declare is kept as the exchange wrote it: a read never fails on it, and the
    next diff shows it as a difference."""
    out: dict[str, tuple[int, int, str]] = {}
    for entry in ips:
        try:
            address = ipaddress.ip_address(normalize_ip(entry))
            out[str(address)] = (address.version, int(address), "")
        except ValueError:
            out[str(entry)] = (9, 0, str(entry))
    return sorted(out, key=lambda text: out[text])


def _check_api_name(value: Any) -> str:
    if not isinstance(value, str) or value.strip() == "":
        raise ValueError("is required: a non-empty name for the key on Binance")
    if value != value.strip():
        raise ValueError(f"{value!r} has leading or trailing spaces")
    if len(value) > MAX_API_NAME_LENGTH:
        raise ValueError(f"is {len(value)} characters; at most {MAX_API_NAME_LENGTH}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("contains control characters")
    return value


def _check_symbol(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip() == "":
        # An empty value (a template variable left unset) must not widen an isolated key to the
        # whole cross margin account.
        raise ValueError("is empty: omit symbol for a cross margin key, or name the isolated pair")
    if not isinstance(value, str):
        raise ValueError("must be an isolated margin pair such as BTCUSDT, or absent for cross margin")
    symbol = value.strip().upper()
    if not SYMBOL_PATTERN.match(symbol):
        raise ValueError(
            f'"{value}" is not a symbol: use the pair\'s letters and digits, such as BTCUSDT'
        )
    return symbol


def _check_choice(value: Any, choices: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if isinstance(value, str) and value.strip() == "":
        raise ValueError(f"is empty: omit it for the default {default}, or use one of {', '.join(choices)}")
    if not isinstance(value, str) or value.strip().upper() not in choices:
        raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
    return value.strip().upper()


def _check_int(value: Any, allowed: tuple[int, ...] | None = None) -> int:
    # Integers arrive from the engine as floats.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a number")
    if value != int(value):
        raise ValueError(f"{value!r} is not a whole number")
    number = int(value)
    if allowed is not None and number not in allowed:
        raise ValueError(f"{number} is not one of {', '.join(map(str, allowed))}")
    return number


def _check_keepers(value: Any) -> dict[str, str] | None:
    if value is None or value == {}:
        return None
    if not isinstance(value, Mapping):
        raise ValueError("must be a map of strings")
    if len(value) > MAX_KEEPERS:
        raise ValueError(f"has {len(value)} entries; at most {MAX_KEEPERS}")
    out: dict[str, str] = {}
    for k, v in value.items():
        # `pulumi config set --path` turns "7" into 7: a keeper is the same whichever it got.
        if isinstance(v, bool):
            out[str(k)] = "true" if v else "false"
        elif isinstance(v, (int, float)) and math.isfinite(v):
            out[str(k)] = str(int(v)) if v == int(v) else repr(v)
        elif isinstance(v, str):
            out[str(k)] = v
        else:
            raise InvalidValue("must be a string, a number or true/false", (str(k),))
    return dict(sorted(out.items()))


def _check_bool(value: Any) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def _check_adoption(news: Mapping[str, Any], key_type: Any, failures: list[Failure],
                    out: dict[str, Any]) -> None:
    api_key = news.get("adopt_api_key")
    private_key = news.get("adopt_private_key")
    secret_key = news.get("adopt_secret_key")
    for name, value in (("adopt_api_key", api_key), ("adopt_private_key", private_key),
                        ("adopt_secret_key", secret_key)):
        if is_unknown(value):
            out[name] = value
    if _absent(api_key):
        for name, value in (("adopt_private_key", private_key), ("adopt_secret_key", secret_key)):
            if not _absent(value):
                failures.append(Failure((name,), "needs adopt_api_key, the apiKey of the key to adopt"))
        return
    if is_unknown(api_key):
        return
    if not isinstance(api_key, str) or not API_KEY_PATTERN.match(api_key):
        failures.append(Failure(("adopt_api_key",), "must be the apiKey of an existing special key"
                                " (letters and digits)"))
        return
    out["adopt_api_key"] = api_key
    if not _absent(news.get("public_key")) and not is_unknown(news.get("public_key")):
        failures.append(Failure(("public_key",), "an adopted key keeps its own key pair; remove public_key"))
    if not _absent(secret_key) and not is_unknown(secret_key):
        if key_type != "HMAC":
            failures.append(Failure(("adopt_secret_key",), f"applies to HMAC keys; key_type is {key_type}"))
        elif not isinstance(secret_key, str) or not HMAC_SECRET_PATTERN.match(secret_key):
            failures.append(Failure(("adopt_secret_key",), "is not an HMAC secret (letters and digits)"))
        else:
            out["adopt_secret_key"] = secret_key
    if not _absent(private_key) and not is_unknown(private_key):
        if key_type == "HMAC":
            failures.append(Failure(
                ("adopt_private_key",), "HMAC keys have no private key; use adopt_secret_key"))
            return
        from .key_pairs import read_private_key

        try:
            info = read_private_key(str(private_key))
        except ValueError as exc:
            failures.append(Failure(("adopt_private_key",), str(exc)))
            return
        if not is_unknown(key_type) and info.key_type != key_type:
            failures.append(Failure(
                ("adopt_private_key",), f"is an {info.key_type} key but key_type is {key_type}"))
            return
        out["adopt_private_key"] = private_key
        if info.bits is not None:
            out["rsa_bits"] = info.bits


def check_inputs(news: Mapping[str, Any], merged_from: int = 0) -> tuple[dict[str, Any], list[Failure]]:
    """Validated, normalized inputs and the failures, each at its structured path. `merged_from`:
    how many leading ip_whitelist entries came from defaultIpWhitelist."""
    out: dict[str, Any] = {k: v for k, v in news.items() if k not in INPUT_FIELDS}
    failures: list[Failure] = []

    def field(name: str, fn: Any, *args: Any) -> Any:
        value = news.get(name)
        if is_unknown(value):
            out[name] = value
            return value
        try:
            result = fn(value, *args)
        except InvalidValue as exc:
            failures.append(Failure((name, *exc.subpath), exc.reason))
            return None
        except ValueError as exc:
            failures.append(Failure((name,), str(exc)))
            return None
        out[name] = result
        return result

    field("api_name", _check_api_name)
    field("symbol", _check_symbol)
    key_type = field("key_type", _check_choice, KEY_TYPES, fields.default("key_type"))

    field("ip_whitelist", normalize_ip_list, merged_from)

    rsa_bits = news.get("rsa_bits")
    if is_unknown(rsa_bits):
        out["rsa_bits"] = rsa_bits
    elif key_type == "RSA":
        field("rsa_bits", lambda v: fields.default("rsa_bits") if v is None else _check_int(v, RSA_BITS))
    elif rsa_bits is not None and key_type is not None:  # None: key_type was refused already
        failures.append(Failure(("rsa_bits",), f"applies to RSA keys only; key_type is {key_type}"))

    mode = news.get("permission_mode")
    if is_unknown(mode):
        out["permission_mode"] = mode
    elif key_type == "ED25519" or is_unknown(key_type):
        field("permission_mode", _check_choice, PERMISSION_MODES, fields.default("permission_mode"))
    elif not _absent(mode) and key_type is not None:
        failures.append(Failure(
            ("permission_mode",),
            f"applies to ED25519 keys only; key_type is {key_type}: remove permission_mode",
        ))

    public_key = news.get("public_key")
    if is_unknown(public_key):
        out["public_key"] = public_key
    elif not _absent(public_key):
        if key_type == "HMAC":
            failures.append(Failure(("public_key",),
                                    "HMAC keys have no public key; Binance makes the secret"))
        elif not isinstance(public_key, str):
            failures.append(Failure(("public_key",), "must be a PEM string"))
        else:
            from .key_pairs import read_public_key

            try:
                info = read_public_key(public_key)
            except ValueError as exc:
                failures.append(Failure(("public_key",), str(exc)))
            else:
                if not is_unknown(key_type) and info.key_type != key_type:
                    failures.append(Failure(
                        ("public_key",), f"is an {info.key_type} key but key_type is {key_type}"
                    ))
                elif info.bits is not None and not is_unknown(out.get("rsa_bits")) \
                        and news.get("rsa_bits") is not None and info.bits != out.get("rsa_bits"):
                    failures.append(Failure(
                        ("public_key",), f"is {info.bits} bits but rsa_bits is {out.get('rsa_bits')}"
                    ))
                else:
                    out["public_key"] = info.pem
                    if info.bits is not None:
                        out["rsa_bits"] = info.bits

    field("keepers", _check_keepers)
    field("provider", lambda v: None if v is None else str(v))
    field("allow_duplicate_name", _check_bool)
    any_ip = field("allow_any_ip", _check_bool)
    if out.get("ip_whitelist") == [] and any_ip is not True and not is_unknown(any_ip):
        failures.append(Failure(
            ("ip_whitelist",), "is empty: a trading key must be locked to the IP addresses that use"
            " it (ipWhitelist, or defaultIpWhitelist for every key); to create a key that any"
            " address can use, set allowAnyIp: true"))
    field("delete_before_replace", _check_bool)
    _check_adoption(news, key_type, failures, out)
    rotate = news.get("rotate_after_days")
    if is_unknown(rotate):
        out["rotate_after_days"] = rotate
    elif rotate is not None:
        try:
            days = _check_int(rotate)
            if days < 1 or days > 3650:
                raise ValueError(f"{days} is outside 1 to 3650 days")
            out["rotate_after_days"] = days
        except ValueError as exc:
            failures.append(Failure(("rotate_after_days",), str(exc)))
    return {k: v for k, v in out.items() if v is not None}, failures


def plan_token(inputs: Mapping[str, Any]) -> str:
    """Names one planned new key within a run: the same checked inputs give the same token, so
    the engine's second check of a replacement's new key is not counted as another key."""
    import json

    return "key:" + json.dumps({k: inputs.get(k) for k in DIFF_FIELDS}, sort_keys=True, default=str)


def creates_key(inputs: Mapping[str, Any]) -> bool:
    """Whether creating this resource makes a new key on the exchange (adoption does not)."""
    return _absent(inputs.get("adopt_api_key"))


def require_valid(news: Mapping[str, Any]) -> dict[str, Any]:
    inputs, failures = check_inputs(news)
    if failures:
        raise InvalidSpec(failures)
    return inputs


@dataclass(frozen=True)
class DiffPlan:
    changes: list[str]
    replaces: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def _declared_public_key(outputs: Mapping[str, Any]) -> str | None:
    """The public key the user declared (not the one we generated) in a resource's outputs."""
    if outputs.get("key_origin") == "provided":
        return outputs.get("public_key")
    return None


def plan_diff(olds: Mapping[str, Any], news: Mapping[str, Any], now_ms: int) -> DiffPlan:
    """Compare stored outputs (`olds`) with checked inputs (`news`)."""
    changes: list[str] = []
    replaces: list[str] = []
    defaults = {"key_type": fields.default("key_type")}
    for name in DIFF_FIELDS:
        new = news.get(name, defaults.get(name))
        old = _declared_public_key(olds) if name == "public_key" else olds.get(name, defaults.get(name))
        if name == "ip_whitelist":
            old = old or []
            new = new if is_unknown(new) else (new or [])
            if not is_unknown(new) and not is_unknown(old):
                old, new = sorted(old), sorted(new)
        if is_unknown(new) or old != new:
            changes.append(name)
            if name in REPLACE_FIELDS:
                replaces.append(name)
    days = news.get("rotate_after_days")
    created = olds.get("created_at_ms")
    if isinstance(days, (int, float)) and not is_unknown(days) and isinstance(created, (int, float)):
        if now_ms - created >= days * 86400 * 1000:
            if "rotate_after_days" not in changes:
                changes.append("rotate_after_days")
            replaces.append("rotate_after_days")
    return DiffPlan(changes, replaces)
