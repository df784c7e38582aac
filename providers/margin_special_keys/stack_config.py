"""A stack's keys, declared in its config: parsing and validation with exact paths.

The program's config key `margin-special-keys:keys` holds a list of key specs in Pulumi's
camelCase config style; `margin-special-keys:defaultIpWhitelist` is merged into every key.
Errors name the exact path, e.g. `keys[2].ipWhitelist[0]: "10.0.0.0/8" is a range; list
addresses`, and are raised before any resource is declared, so before any request is sent.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import fields, spec, values
from .errors import InvalidInput

# camelCase config name -> resource keyword argument, and the resource options; from fields.py
FIELDS = fields.CONFIG_NAMES
OPTION_FIELDS = fields.OPTIONS
# The program's config namespace, whatever a consuming project is called: the runner reads it too.
CONFIG_NAMESPACE = "margin-special-keys"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class StackConfigError(InvalidInput):
    """Malformed stack config; the message lists every problem with its path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("stack config is not valid:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class DeclaredKey:
    name: str
    args: dict[str, Any]
    options: dict[str, bool] = field(default_factory=dict)


# Stack config that must never sit in plaintext in a committed Pulumi.<stack>.yaml, and the exact
# command that stores it encrypted instead.
SECRET_SETTINGS = {
    "binance:apiKey": "pulumi config set --secret binance:apiKey   # then paste the key",
    "binance:secretKey": "pulumi config set --secret binance:secretKey   # then paste the secret",
    "binance:privateKey": "pulumi config set --secret binance:privateKey < provider-key.pem",
}
SECRET_KEY_FIELDS = {"adoptPrivateKey": "< adopted-key.pem", "adoptSecretKey": "  # then paste it"}


def plaintext_secrets(get: Callable[[str], str | None], is_secret: Callable[[str], bool],
                      raw_keys: Any, project: str = "margin-special-keys") -> list[str]:
    """Credentials present in the stack's config without `--secret`: each with the command that
    fixes it. Only names are said, never values."""
    problems = [
        f"{name} is stored in plaintext in the stack's config file; store it encrypted:"
        f" `{command}`"
        for name, command in SECRET_SETTINGS.items()
        if get(name) not in (None, "") and not is_secret(name)
    ]
    if isinstance(raw_keys, list) and not is_secret(f"{project}:keys"):
        for i, entry in enumerate(raw_keys):
            for field_name, tail in SECRET_KEY_FIELDS.items():
                if isinstance(entry, Mapping) and entry.get(field_name) not in (None, ""):
                    problems.append(
                        f"keys[{i}].{field_name} is stored in plaintext in the stack's config file;"
                        f" store it encrypted: `pulumi config set --secret --path"
                        f" '{CONFIG_NAMESPACE}:keys[{i}].{field_name}' {tail.strip()}`")
    return problems


def parse_keys(raw_keys: Any, default_ips: Any = None, root: str = "keys") -> list[DeclaredKey]:
    problems: list[str] = []
    if raw_keys is None:
        return []
    if not isinstance(raw_keys, list):
        raise StackConfigError([f"{root}: must be a list of keys, got {type(raw_keys).__name__}"])
    defaults: list[str] = []
    if default_ips is not None:
        try:
            listed = values.normalize_ip_list(default_ips)
            defaults = listed if isinstance(listed, list) else []
        except spec.InvalidValue as exc:
            problems.append(f"{spec.render_path(('defaultIpWhitelist', *exc.subpath))}: {exc.reason}")
    known = [*FIELDS, *OPTION_FIELDS, "name"]
    declared: list[DeclaredKey] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(raw_keys):
        where: values.Path = (root, i)
        here = spec.render_path(where)
        if not isinstance(entry, Mapping):
            problems.append(f"{here}: must be a map with at least `name`")
            continue
        for unknown in sorted(set(entry) - set(known)):
            likely = difflib.get_close_matches(unknown, known, n=1)
            hint = f"did you mean {likely[0]}? " if likely else ""
            problems.append(f"{here}.{unknown}: unknown field; {hint}known fields are"
                            f" {', '.join(known)}")
        name = entry.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            problems.append(
                f"{here}.name: {name!r} is not a name: letters, digits, '.', '_' or '-',"
                " at most 63 characters"
            )
            continue
        if name in seen:
            problems.append(f"{here}.name: {name!r} is already the name of {root}[{seen[name]}]")
            continue
        seen[name] = i
        args = {FIELDS[k]: v for k, v in entry.items() if k in FIELDS}
        args.setdefault("api_name", name)
        ips = args.get("ip_whitelist")
        if ips is not None and not isinstance(ips, list):
            problems.append(f"{here}.ipWhitelist: must be a list of IP addresses")
            continue
        args["ip_whitelist"] = [*defaults, *(ips or [])]
        checked, failures = spec.check_inputs(args, merged_from=len(defaults))
        for failure in failures:
            path = failure.path
            if path[0] == "ip_whitelist" and len(path) > 1 and isinstance(path[1], int):
                # An index into the merged list: name the entry as declared.
                path = ("ip_whitelist", path[1] - len(defaults), *path[2:])
            problems.append(spec.Failure(path, failure.reason).config(where))
        options = {}
        for k, opt in OPTION_FIELDS.items():
            if k in entry:
                if not isinstance(entry[k], bool):
                    problems.append(f"{here}.{k}: must be true or false")
                else:
                    options[opt] = entry[k]
        # The checked (normalized) declaration, as the resource will take it: checked once.
        declared.append(DeclaredKey(name, {k: v for k, v in checked.items() if k in fields.KEYWORDS},
                                    options))
    if problems:
        raise StackConfigError(problems)
    return declared


def keys_from_cli_config(config: Mapping[str, str]) -> list[DeclaredKey]:
    """The stack's keys from its config as `pulumi config --json` gives it (structured values as
    JSON text): what the runner's preflight reads."""
    import json

    raw_keys = config.get(f"{CONFIG_NAMESPACE}:keys")
    raw_defaults = config.get(f"{CONFIG_NAMESPACE}:defaultIpWhitelist")
    return parse_keys(json.loads(raw_keys) if raw_keys else None,
                      json.loads(raw_defaults) if raw_defaults else None)
