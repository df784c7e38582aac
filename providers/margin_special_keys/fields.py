"""Every input and output of MarginSpecialKey, declared once: the schema (after
terraform-provider-aws schemas).

Each field carries its name in Python and in stack config, its type, the check that accepts and
writes its value (values.py), the key types it applies to, its default, whether it is sensitive,
and what a change of it does (`role`):

- `identity`: names the key on the exchange; a change creates a new key (replacement);
- `update`:   the exchange edits it in place;
- `state`:    kept in the state only; a change touches nothing on the exchange;
- `adopt`:    how an existing key is taken over at create; never compared, never an output;
- `output`:   computed by the provider.

Validation walks this table (spec.check_inputs); the plan (spec.plan_diff), the stack-config parser
(stack_config), the resource's signature and secret outputs (resource.py, held equal to the table
by a test) and the field table in docs/configuration.md derive from it.
`python -m margin_special_keys.fields` prints the table docs/configuration.md shows.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from . import values
from .key_type import KeyType

Role = Literal["identity", "update", "state", "adopt", "output"]


@dataclass(frozen=True)
class Field:
    name: str  # the resource's keyword argument and state property
    config: str | None  # the stack-config (camelCase) name; None: not set from stack config
    role: Role
    type: str  # as the resource's annotations spell it
    doc: str
    check: Callable[[Any], Any] | None = None  # accepts a value and writes it (values.py)
    applies_to: tuple[KeyType, ...] | None = None  # None: every key type
    default: Any = None  # filled in where the field applies and nothing is declared
    sensitive: bool = False  # never echoed; encrypted in state; refused in plaintext config
    keyword: bool = True  # a keyword argument of MarginSpecialKey (not: set by the resource)


FIELDS: tuple[Field, ...] = (
    Field("api_name", "apiName", "identity", "str",
          "Binance's apiName; required in Python, and the entry's `name` when stack config omits it",
          check=values.api_name),
    Field("symbol", "symbol", "identity", "str | None",
          "the isolated margin pair, such as BTCUSDT; omit it for the cross margin account",
          check=values.symbol),
    Field("key_type", "keyType", "identity", "str", "ED25519, RSA or HMAC (deprecated by Binance)",
          check=values.key_type, default=KeyType.ED25519.value),
    Field("ip_whitelist", "ipWhitelist", "update", "list[str]",
          "the IP addresses that may use the key, at most 30; required unless allowAnyIp",
          check=values.normalize_ip_list, default=()),
    Field("rsa_bits", "rsaBits", "identity", "int | None", "RSA only: 2048 or 4096",
          check=values.rsa_bits, applies_to=(KeyType.RSA,), default=2048),
    Field("permission_mode", "permissionMode", "identity", "str | None", "Ed25519 only: TRADE or READ",
          check=values.permission_mode, applies_to=(KeyType.ED25519,), default="TRADE"),
    Field("public_key", "publicKey", "identity", "str | None",
          "bring your own PKCS#8 public key PEM instead of a generated keypair",
          applies_to=(KeyType.ED25519, KeyType.RSA), sensitive=True),
    Field("keepers", "keepers", "identity", "dict[str, str] | None",
          "a map of strings (numbers and booleans are taken as strings); any change replaces the key",
          check=values.keepers),
    Field("rotate_after_days", "rotateAfterDays", "state", "int | None",
          "a key older than this shows as a replacement in the next preview", check=values.days),
    Field("overlap_hours", "overlapHours", "state", "int | None",
          "a rotation makes the new key current and keeps the previous one usable this many hours"
          " (counted from the rotation); the first run after that retires it. 0 or absent: the old"
          " key goes in the same run", check=values.hours),
    Field("deliver_to", "deliverTo", "state", "list[str] | None",
          "age recipients (age1…) of the trading systems that may read this key: its credentials"
          " are sealed to them in `sealed_credentials`; a change re-seals, it does not rotate",
          check=values.age_recipients),
    Field("allow_duplicate_name", "allowDuplicateName", "state", "bool | None",
          "create even when another key of the scope has the same apiName", check=values.boolean),
    Field("allow_any_ip", "allowAnyIp", "state", "bool | None",
          "create the key without an IP restriction (warned about on every preview)",
          check=values.boolean),
    Field("delete_before_replace", None, "state", "bool | None",
          "a replacement deletes the old key before it creates the new one: the resource option"
          " `delete_before_replace` in Python, `deleteBeforeReplace` in stack config",
          check=values.boolean, keyword=False),
    Field("provider", None, "state", "str | None",
          "a fingerprint of the provider settings (host, provider apiKey, key type), set by the"
          " resource: a change of them shows in every preview", check=values.text, keyword=False),
    Field("adopt_api_key", "adoptApiKey", "adopt", "str | None",
          "take over this existing key instead of creating one"),
    Field("adopt_private_key", "adoptPrivateKey", "adopt", "str | None",
          "the adopted Ed25519 or RSA key's private key PEM (set with --secret)", sensitive=True),
    Field("adopt_secret_key", "adoptSecretKey", "adopt", "str | None",
          "the adopted HMAC key's secret (set with --secret)", sensitive=True),
    Field("api_key", None, "output", "str", "the key's apiKey"),
    Field("private_key", None, "output", "str | None", "the generated private key PEM", sensitive=True),
    Field("secret_key", None, "output", "str | None", "the HMAC secret Binance made", sensitive=True),
    Field("key_origin", None, "output", "str", "generated, provided, exchange (HMAC) or adopted"),
    Field("created_at_ms", None, "output", "float",
          "when the key was made or adopted (ms since 1970)"),
    Field("previous_api_key", None, "output", "str | None",
          "during an overlap window: the previous key's apiKey, usable until previous_retires_at_ms"),
    Field("previous_private_key", None, "output", "str | None",
          "during an overlap window: the previous key's private key PEM", sensitive=True),
    Field("previous_secret_key", None, "output", "str | None",
          "during an overlap window: the previous HMAC key's secret", sensitive=True),
    Field("previous_key_type", None, "output", "str | None",
          "during an overlap window: the previous key's key type"),
    Field("previous_retires_at_ms", None, "output", "float | None",
          "during an overlap window: from when the next run deletes the previous key (ms since 1970)"),
    Field("sealed_credentials", None, "output", "str | None",
          "with deliverTo: the key's credentials (and, during a window, the previous key's) as an"
          " age file (ASCII armor) only those recipients can open; not a secret, it may be"
          " published"),
    Field("account_uid", None, "output", "int | None",
          "the uid of the Binance account that holds the key (GET /api/v3/account): a refresh,"
          " diff or delete through a provider that signs for another account is refused"),
)
# Resource options that stack config may set for a key, beside its fields.
OPTIONS = {"deleteBeforeReplace": "delete_before_replace", "protect": "protect"}

BY_NAME = {f.name: f for f in FIELDS}


def names(*roles: Role) -> tuple[str, ...]:
    return tuple(f.name for f in FIELDS if f.role in roles)


IDENTITY_FIELDS = names("identity")
UPDATE_FIELDS = names("update")
STATE_FIELDS = names("state")
ADOPT_FIELDS = names("adopt")
OUTPUT_FIELDS = names("output")
DIFF_FIELDS = names("identity", "update", "state")
INPUT_FIELDS = names("identity", "update", "state", "adopt")
KEYWORDS = tuple(f.name for f in FIELDS if f.role != "output" and f.keyword)
# What a resource holds of its previous key during an overlap window (overlap_hours).
PREVIOUS_OUTPUTS = tuple(f.name for f in FIELDS if f.name.startswith("previous_"))
SECRET_OUTPUTS = [f.name for f in FIELDS if f.role == "output" and f.sensitive]
SENSITIVE_INPUTS = tuple(f.name for f in FIELDS if f.role != "output" and f.sensitive)
# camelCase config name -> keyword argument, for the fields stack config may set
CONFIG_NAMES = {f.config: f.name for f in FIELDS if f.config is not None}
PYTHON_TO_CONFIG = {f.name: f.config or f.name for f in FIELDS} | {
    "delete_before_replace": "deleteBeforeReplace"}


def default(name: str) -> Any:
    return BY_NAME[name].default


def markdown_table() -> str:
    """The documentation's field table (an entry's `name` and resource options have their own,
    hand-written above it in docs/configuration.md)."""
    what = {"identity": "replaces the key", "update": "edited in place", "state": "state only",
            "adopt": "at adoption", "output": "output"}
    rows = ["| stack config | Python | type | a change | default | key types | never echoed | what it is |",
            "|---|---|---|---|---|---|---|---|"]
    for f in FIELDS:
        shown = "" if f.default in (None, ()) else f"`{f.default}`"
        kinds = ", ".join(k.value for k in f.applies_to) if f.applies_to else ""
        typed = f.type.replace("|", "\\|")  # a bare | would split the table's cell
        rows.append(f"| {f'`{f.config}`' if f.config else ''} | `{f.name}` | `{typed}` |"
                    f" {what[f.role]} |"
                    f" {shown} | {kinds} | {'yes' if f.sensitive else ''} | {f.doc} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown_table())
