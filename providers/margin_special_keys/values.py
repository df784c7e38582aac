"""One value at a time: what each field of a key accepts, and how it is written once accepted.

Pure functions, no network: the field table (fields.py) names one of these as each field's
check, and the walk over the table (spec.check_inputs) applies them. During `pulumi preview` a
value may be the engine's unknown sentinel; checks never see it (the walk passes it through).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from typing import Any

from .binance.formats import RSA_BITS
from .errors import InvalidInput
from .key_type import KeyType

# pulumi.runtime.rpc.UNKNOWN: how the dynamic provider host hands over a value not yet known.
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

PERMISSION_MODES = ("TRADE", "READ")
MAX_IPS = 30
MAX_API_NAME_LENGTH = 128
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9]{2,20}$")
MAX_KEEPERS = 32
ROTATE_AFTER_DAYS = (1, 3650)
OVERLAP_HOURS = (0, 720)  # up to 30 days of two live keys

Path = tuple[str | int, ...]  # a field, then list indexes or map keys


class InvalidValue(InvalidInput):
    """A value refused at `subpath` below its field (an entry of a list, a key of a map)."""

    def __init__(self, reason: str, subpath: Path = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.subpath = subpath


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value == UNKNOWN


def absent(value: Any) -> bool:
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


def api_name(value: Any) -> str:
    if not isinstance(value, str) or value.strip() == "":
        raise ValueError("is required: a non-empty name for the key on Binance")
    if value != value.strip():
        raise ValueError(f"{value!r} has leading or trailing spaces")
    if len(value) > MAX_API_NAME_LENGTH:
        raise ValueError(f"is {len(value)} characters; at most {MAX_API_NAME_LENGTH}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("contains control characters")
    return value


def symbol(value: Any) -> str | None:
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


def choice(value: Any, choices: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if isinstance(value, str) and value.strip() == "":
        raise ValueError(f"is empty: omit it for the default {default}, or use one of {', '.join(choices)}")
    if not isinstance(value, str) or value.strip().upper() not in choices:
        raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
    return value.strip().upper()


def whole_number(value: Any, allowed: tuple[int, ...] | None = None) -> int:
    # Integers arrive from the engine as floats.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a number")
    if value != int(value):
        raise ValueError(f"{value!r} is not a whole number")
    number = int(value)
    if allowed is not None and number not in allowed:
        raise ValueError(f"{number} is not one of {', '.join(map(str, allowed))}")
    return number


def keepers(value: Any) -> dict[str, str] | None:
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


def boolean(value: Any) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value




def key_type(value: Any) -> str:
    """ED25519, RSA or HMAC, in any case; an empty value is refused (never a default's stand-in)."""
    return choice(value, tuple(KeyType), KeyType.ED25519.value)


def permission_mode(value: Any) -> str:
    return choice(value, PERMISSION_MODES, "TRADE")


def rsa_bits(value: Any) -> int:
    return whole_number(value, RSA_BITS)


def days(value: Any) -> int:
    number = whole_number(value)
    low, high = ROTATE_AFTER_DAYS
    if not low <= number <= high:
        raise ValueError(f"{number} is outside {low} to {high} days")
    return number


def hours(value: Any) -> int:
    number = whole_number(value)
    low, high = OVERLAP_HOURS
    if not low <= number <= high:
        raise ValueError(f"{number} is outside {low} to {high} hours")
    return number


MAX_RECIPIENTS = 20


def age_recipients(value: Any) -> list[str]:
    """The age X25519 recipients (`age1…`) a key's credentials are sealed to, as age writes
    them, once each, sorted. Never echoed: a secret identity pasted here by mistake is named as
    such, not repeated."""
    from .age import AgeError, Recipient

    if not isinstance(value, (list, tuple)):
        raise ValueError("must be a list of age recipients (age1…)")
    if not value:
        raise ValueError("is empty: list the age recipients (age1…) of the systems that may read"
                         " this key, or remove deliverTo")
    written = set()
    for index, entry in enumerate(value):
        if not isinstance(entry, str):
            raise InvalidValue("is not a string", (index,))
        try:
            written.add(str(Recipient.parse(entry)))
        except AgeError as exc:
            raise InvalidValue(str(exc), (index,)) from None
    if len(written) > MAX_RECIPIENTS:
        raise ValueError(f"has {len(written)} recipients; at most {MAX_RECIPIENTS}")
    return sorted(written)


def text(value: Any) -> str:
    return str(value)
