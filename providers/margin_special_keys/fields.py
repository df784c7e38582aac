"""Every input and output of MarginSpecialKey, declared once (after terraform-provider-aws schemas).

The plan (`spec.plan_diff`), validation (`spec.check_inputs`), the stack-config parser
(`stack_config`), the secret outputs of the resource and the README's field table all derive from
this table. A field's `role` says what a change of it does:

- `identity`: names the key on the exchange; a change creates a new key (replacement);
- `update`:   the exchange edits it in place;
- `state`:    kept in the state only; a change touches nothing on the exchange;
- `adopt`:    how an existing key is taken over at create; never compared, never an output;
- `output`:   computed by the provider.

`python -m margin_special_keys.fields` prints the README's table.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["identity", "update", "state", "adopt", "output"]


@dataclass(frozen=True)
class Field:
    name: str  # the resource's keyword argument and state property
    config: str | None  # the stack-config (camelCase) name; None: not set from stack config
    role: Role
    doc: str
    default: Any = None
    sensitive: bool = False  # never echoed; encrypted in state; refused in plaintext config


FIELDS: tuple[Field, ...] = (
    Field("api_name", "apiName", "identity", "Binance's apiName; defaults to the entry's `name`"),
    Field("symbol", "symbol", "identity",
          "the isolated margin pair, such as BTCUSDT; omit it for the cross margin account"),
    Field("ip_whitelist", "ipWhitelist", "update",
          "the IP addresses that may use the key, at most 30; required unless allowAnyIp",
          default=()),
    Field("key_type", "keyType", "identity", "ED25519, RSA or HMAC (deprecated by Binance)",
          default="ED25519"),
    Field("rsa_bits", "rsaBits", "identity", "RSA only: 2048 or 4096", default=2048),
    Field("permission_mode", "permissionMode", "identity", "Ed25519 only: TRADE or READ",
          default="TRADE"),
    Field("public_key", "publicKey", "identity",
          "bring your own PKCS#8 public key PEM instead of a generated keypair", sensitive=True),
    Field("keepers", "keepers", "identity",
          "a map of strings (numbers and booleans are taken as strings); any change replaces the key"),
    Field("rotate_after_days", "rotateAfterDays", "state",
          "a key older than this shows as a replacement in the next preview"),
    Field("allow_duplicate_name", "allowDuplicateName", "state",
          "create even when another key of the scope has the same apiName"),
    Field("allow_any_ip", "allowAnyIp", "state",
          "create the key without an IP restriction (warned about on every preview)"),
    Field("delete_before_replace", "deleteBeforeReplace", "state",
          "a replacement deletes the old key before it creates the new one"),
    Field("provider", None, "state",
          "a fingerprint of the provider settings (host, provider apiKey, key type), set by the"
          " resource: a change of them shows in every preview"),
    Field("adopt_api_key", "adoptApiKey", "adopt", "take over this existing key instead of creating one"),
    Field("adopt_private_key", "adoptPrivateKey", "adopt",
          "the adopted Ed25519 or RSA key's private key PEM (set with --secret)", sensitive=True),
    Field("adopt_secret_key", "adoptSecretKey", "adopt",
          "the adopted HMAC key's secret (set with --secret)", sensitive=True),
    Field("api_key", None, "output", "the key's apiKey"),
    Field("private_key", None, "output", "the generated private key PEM", sensitive=True),
    Field("secret_key", None, "output", "the HMAC secret Binance made", sensitive=True),
    Field("key_origin", None, "output", "generated, provided, exchange (HMAC) or adopted"),
    Field("created_at_ms", None, "output", "when the key was made or adopted (ms since 1970)"),
    Field("account_uid", None, "output",
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
SECRET_OUTPUTS = [f.name for f in FIELDS if f.role == "output" and f.sensitive]
SENSITIVE_INPUTS = tuple(f.name for f in FIELDS if f.role != "output" and f.sensitive)
# camelCase config name -> keyword argument, for the fields stack config may set
CONFIG_NAMES = {f.config: f.name for f in FIELDS if f.config is not None and f.name not in OPTIONS.values()}
PYTHON_TO_CONFIG = {f.name: f.config for f in FIELDS if f.config is not None}


def default(name: str) -> Any:
    return BY_NAME[name].default


def markdown_table() -> str:
    """The README's field table."""
    what = {"identity": "replaces the key", "update": "edited in place", "state": "state only",
            "adopt": "at adoption", "output": "output"}
    rows = ["| stack config | Python | a change | default | never echoed | what it is |",
            "|---|---|---|---|---|---|"]
    for f in FIELDS:
        shown = "" if f.default in (None, ()) else f"`{f.default}`"
        rows.append(f"| {f'`{f.config}`' if f.config else ''} | `{f.name}` | {what[f.role]} |"
                    f" {shown} | {'yes' if f.sensitive else ''} | {f.doc} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown_table())
