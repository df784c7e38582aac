"""A stack's keys, declared in its config: parsing and validation with exact paths.

The program's config key `margin-special-keys:keys` holds a list of key specs in Pulumi's
camelCase config style; `margin-special-keys:defaultIpWhitelist` is merged into every key.
Errors name the exact path, e.g. `keys[2].ipWhitelist[0]: "10.0.0.0/8" is a range; list
addresses`, and are raised before any resource is declared, so before any request is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import spec

# camelCase config name -> resource keyword argument
FIELDS = {
    "apiName": "api_name",
    "symbol": "symbol",
    "ipWhitelist": "ip_whitelist",
    "keyType": "key_type",
    "rsaBits": "rsa_bits",
    "permissionMode": "permission_mode",
    "publicKey": "public_key",
    "keepers": "keepers",
    "rotateAfterDays": "rotate_after_days",
    "adoptApiKey": "adopt_api_key",
    "adoptPrivateKey": "adopt_private_key",
    "adoptSecretKey": "adopt_secret_key",
    "allowDuplicateName": "allow_duplicate_name",
}
OPTION_FIELDS = {"deleteBeforeReplace": "delete_before_replace", "protect": "protect"}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class StackConfigError(ValueError):
    """Malformed stack config; the message lists every problem with its path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("stack config is not valid:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class DeclaredKey:
    name: str
    args: dict[str, Any]
    options: dict[str, bool] = field(default_factory=dict)


def parse_keys(raw_keys: Any, default_ips: Any = None, root: str = "keys") -> list[DeclaredKey]:
    problems: list[str] = []
    if raw_keys is None:
        return []
    if not isinstance(raw_keys, list):
        raise StackConfigError([f"{root}: must be a list of keys, got {type(raw_keys).__name__}"])
    defaults: list[str] = []
    if default_ips is not None:
        try:
            defaults = spec.normalize_ip_list(default_ips, "defaultIpWhitelist")
        except ValueError as exc:
            problems.append(str(exc))
    declared: list[DeclaredKey] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(raw_keys):
        where = f"{root}[{i}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: must be a map with at least `name`")
            continue
        unknown = sorted(set(entry) - set(FIELDS) - set(OPTION_FIELDS) - {"name"})
        for name in unknown:
            problems.append(
                f"{where}.{name}: unknown field; known fields are name, "
                + ", ".join([*FIELDS, *OPTION_FIELDS])
            )
        name = entry.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            problems.append(
                f"{where}.name: {name!r} is not a name: letters, digits, '.', '_' or '-',"
                " at most 63 characters"
            )
            continue
        if name in seen:
            problems.append(f"{where}.name: {name!r} is already the name of keys[{seen[name]}]")
            continue
        seen[name] = i
        args = {FIELDS[k]: v for k, v in entry.items() if k in FIELDS}
        args.setdefault("api_name", name)
        ips = args.get("ip_whitelist")
        if ips is not None and not isinstance(ips, list):
            problems.append(f"{where}.ipWhitelist: must be a list of IP addresses")
            continue
        args["ip_whitelist"] = [*defaults, *(ips or [])]
        for i_ip, ip in enumerate(ips or []):
            try:
                spec.normalize_ip(ip, f"{where}.ipWhitelist[{i_ip}]")
            except ValueError as exc:
                problems.append(str(exc))
        _, failures = spec.check_inputs(args)
        camel = {v: k for k, v in FIELDS.items()}
        for failure in failures:
            if failure.property == "ip_whitelist" and "[" in failure.reason:
                continue  # already reported above with its config path
            path = f"{where}.{camel.get(failure.property, failure.property)}"
            reason = failure.reason
            if reason.startswith(f"{failure.property}: "):
                reason = reason[len(failure.property) + 2:]
            problems.append(f"{path}: {reason}")
        options = {}
        for k, opt in OPTION_FIELDS.items():
            if k in entry:
                if not isinstance(entry[k], bool):
                    problems.append(f"{where}.{k}: must be true or false")
                else:
                    options[opt] = entry[k]
        declared.append(DeclaredKey(name, {k: v for k, v in args.items() if v is not None}, options))
    if problems:
        raise StackConfigError(problems)
    return declared
