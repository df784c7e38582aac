"""The declared special key: validation, normalization and the diff plan, as pure functions.

Nothing here talks to the network, so every rule is tested without one. Property names are the
resource's Python keyword arguments (snake_case). During `pulumi preview` any input may be the
engine's unknown sentinel; unknowns pass through validation and count as changes in a diff.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import fields, values
from .binance.formats import API_KEY_PATTERN, HMAC_SECRET_PATTERN
from .errors import InvalidInput
from .key_type import KeyType
from .values import UNKNOWN, InvalidValue, Path, absent, is_unknown

__all__ = ["UNKNOWN", "DiffPlan", "Failure", "InvalidSpec", "InvalidValue", "check_inputs",
           "creates_key", "is_unknown", "plan_diff", "plan_token", "render_path", "require_valid"]

# The field lists, from the one table (fields.py): identity fields replace the key, update fields
# are edited in place, state fields touch nothing on the exchange, adopt fields act at create only.
REPLACE_FIELDS = fields.IDENTITY_FIELDS
UPDATE_FIELDS = fields.UPDATE_FIELDS
STATE_FIELDS = fields.STATE_FIELDS
ADOPT_FIELDS = fields.ADOPT_FIELDS
DIFF_FIELDS = fields.DIFF_FIELDS
INPUT_FIELDS = fields.INPUT_FIELDS



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


class InvalidSpec(InvalidInput):
    def __init__(self, failures: list[Failure]) -> None:
        super().__init__("; ".join(f.python() for f in failures))
        self.failures = failures


def _check_adoption(news: Mapping[str, Any], key_type: Any, failures: list[Failure],
                    out: dict[str, Any]) -> None:
    api_key = news.get("adopt_api_key")
    private_key = news.get("adopt_private_key")
    secret_key = news.get("adopt_secret_key")
    for name, value in (("adopt_api_key", api_key), ("adopt_private_key", private_key),
                        ("adopt_secret_key", secret_key)):
        if is_unknown(value):
            out[name] = value
    if absent(api_key):
        for name, value in (("adopt_private_key", private_key), ("adopt_secret_key", secret_key)):
            if not absent(value):
                failures.append(Failure((name,), "needs adopt_api_key, the apiKey of the key to adopt"))
        return
    if is_unknown(api_key):
        return
    if not isinstance(api_key, str) or not API_KEY_PATTERN.match(api_key):
        failures.append(Failure(("adopt_api_key",), "must be the apiKey of an existing special key"
                                " (letters and digits)"))
        return
    out["adopt_api_key"] = api_key
    if not absent(news.get("public_key")) and not is_unknown(news.get("public_key")):
        failures.append(Failure(("public_key",), "an adopted key keeps its own key pair; remove public_key"))
    if not absent(secret_key) and not is_unknown(secret_key):
        if key_type != KeyType.HMAC:
            failures.append(Failure(("adopt_secret_key",), f"applies to HMAC keys; key_type is {key_type}"))
        elif not isinstance(secret_key, str) or not HMAC_SECRET_PATTERN.match(secret_key):
            failures.append(Failure(("adopt_secret_key",), "is not an HMAC secret (letters and digits)"))
        else:
            out["adopt_secret_key"] = secret_key
    if not absent(private_key) and not is_unknown(private_key):
        if key_type == KeyType.HMAC:
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
    """Validated, normalized inputs and the failures, each at its structured path: a walk over the
    field table, then the rules that tie fields together. `merged_from`: how many leading
    ip_whitelist entries came from defaultIpWhitelist (only the wording of a count uses it).
    Pure, so a process checks each distinct declaration once (_CHECKED)."""
    declared = {k: v for k, v in news.items() if k not in _SET_BY_THE_RESOURCE}
    key = _memo_key(declared, merged_from)
    if key not in _CHECKED:
        _CHECKED[key] = _check(declared, merged_from)
        checked, failures = _CHECKED[key]
        if not failures:  # a declaration once normalized checks to itself: no second walk
            _CHECKED.setdefault(_memo_key(checked, 0), (checked, []))
    out, failures = dict(_CHECKED[key][0]), list(_CHECKED[key][1])
    for name in _SET_BY_THE_RESOURCE:
        value = news.get(name)
        if is_unknown(value):
            out[name] = value
        else:
            _accept(fields.BY_NAME[name], value, out, failures, 0)
    _check_overlap(out, failures)  # after the resource's own inputs: deleteBeforeReplace is one
    return {k: v for k, v in out.items() if v is not None}, failures


# Inputs the resource sets (not the person declaring the key): checked on every call, outside the
# memo, so a declaration the program checked once is not checked again when the resource adds them.
_SET_BY_THE_RESOURCE = tuple(f.name for f in fields.FIELDS if f.role != "output" and not f.keyword)
_CHECKED: dict[str, tuple[dict[str, Any], list[Failure]]] = {}


def _memo_key(inputs: Mapping[str, Any], merged_from: int) -> str:
    return json.dumps([inputs, merged_from], sort_keys=True, default=repr)


def _check(news: Mapping[str, Any], merged_from: int) -> tuple[dict[str, Any], list[Failure]]:
    out: dict[str, Any] = {k: v for k, v in news.items() if k not in INPUT_FIELDS}
    failures: list[Failure] = []
    key_type: Any = None
    for f in fields.FIELDS:
        if f.role == "output" or f.check is None:
            continue  # computed, or checked by a rule below (public_key, adoption)
        value = news.get(f.name)
        if is_unknown(value):
            out[f.name] = value
        elif f.applies_to is not None and (key_type is None or is_unknown(key_type)):
            if value is not None and not is_unknown(key_type):
                continue  # key_type was refused: its own failure says it
            _accept(f, value, out, failures, merged_from)
        elif f.applies_to is not None and KeyType(key_type) not in f.applies_to:
            if not absent(value):
                kinds = ", ".join(k.value for k in f.applies_to)
                failures.append(Failure((f.name,), f"applies to {kinds} keys only; key_type is"
                                        f" {key_type}: remove {f.name}"))
        else:
            _accept(f, f.default if value is None else value, out, failures, merged_from)
        if f.name == "key_type":
            key_type = out.get("key_type")
    _check_public_key(news, key_type, failures, out)
    any_ip = out.get("allow_any_ip")
    if out.get("ip_whitelist") == [] and any_ip is not True and not is_unknown(any_ip):
        failures.append(Failure(
            ("ip_whitelist",), "is empty: a trading key must be locked to the IP addresses that use"
            " it (ipWhitelist, or defaultIpWhitelist for every key); to create a key that any"
            " address can use, set allowAnyIp: true"))
    _check_adoption(news, key_type, failures, out)
    return {k: v for k, v in out.items() if v is not None}, failures


def _check_overlap(out: Mapping[str, Any], failures: list[Failure]) -> None:
    """An overlap window keeps the old key alive after a rotation: it cannot be combined with
    deleting the old key first, and must end before the next rotation by age is due."""
    hours, days = overlap_hours(out), out.get("rotate_after_days")
    if hours == 0:
        return
    if out.get("delete_before_replace") is True:
        failures.append(Failure(("overlap_hours",), "keeps the old key for a window after a"
                                " rotation, but deleteBeforeReplace deletes it first: choose one"))
    if isinstance(days, (int, float)) and not isinstance(days, bool) and hours >= days * 24:
        failures.append(Failure(("overlap_hours",), f"{hours} hours is not shorter than"
                                f" rotateAfterDays ({days} days): the next rotation would come"
                                " before the previous key retires"))


def _accept(f: fields.Field, value: Any, out: dict[str, Any], failures: list[Failure],
            merged_from: int) -> None:
    """`value` through the field's check, into `out`, or its failure at its path."""
    if value is None or value == ():
        if value == ():
            out[f.name] = []
        return
    assert f.check is not None
    try:
        out[f.name] = (values.normalize_ip_list(value, merged_from) if f.name == "ip_whitelist"
                       else f.check(value))
    except InvalidValue as exc:
        failures.append(Failure((f.name, *exc.subpath), exc.reason))
    except ValueError as exc:
        failures.append(Failure((f.name,), str(exc)))


def _check_public_key(news: Mapping[str, Any], key_type: Any, failures: list[Failure],
                      out: dict[str, Any]) -> None:
    """A declared public key: of the declared key type and size, written as its canonical PEM;
    it also says the RSA key's size."""
    public_key = news.get("public_key")
    if is_unknown(public_key):
        out["public_key"] = public_key
        return
    if absent(public_key):
        return
    if key_type == KeyType.HMAC:
        failures.append(Failure(("public_key",), "HMAC keys have no public key; Binance makes the secret"))
        return
    if not isinstance(public_key, str):
        failures.append(Failure(("public_key",), "must be a PEM string"))
        return
    from .key_pairs import read_public_key

    try:
        info = read_public_key(public_key)
    except ValueError as exc:
        failures.append(Failure(("public_key",), str(exc)))
        return
    if not is_unknown(key_type) and info.key_type != key_type:
        failures.append(Failure(("public_key",), f"is an {info.key_type} key but key_type is {key_type}"))
    elif info.bits is not None and not is_unknown(out.get("rsa_bits")) \
            and news.get("rsa_bits") is not None and info.bits != out.get("rsa_bits"):
        failures.append(Failure(("public_key",),
                                f"is {info.bits} bits but rsa_bits is {out.get('rsa_bits')}"))
    else:
        out["public_key"] = info.pem
        if info.bits is not None:
            out["rsa_bits"] = info.bits


def plan_token(inputs: Mapping[str, Any]) -> str:
    """Names one planned new key within a run: the same checked inputs give the same token, so
    the engine's second check of a replacement's new key is not counted as another key."""
    return "key:" + json.dumps({k: inputs.get(k) for k in DIFF_FIELDS}, sort_keys=True, default=str)


def creates_key(inputs: Mapping[str, Any]) -> bool:
    """Whether creating this resource makes a new key on the exchange (adoption does not)."""
    return absent(inputs.get("adopt_api_key"))


def require_valid(news: Mapping[str, Any]) -> dict[str, Any]:
    inputs, failures = check_inputs(news)
    if failures:
        raise InvalidSpec(failures)
    return inputs


@dataclass(frozen=True)
class DiffPlan:
    """What a change of a key does. `replaces`: the causes of a replacement (a new resource);
    `rotates`: the same causes, carried out in place under an overlap window (a new key becomes
    current, the old one stays usable until `retires_at_ms`); `retires`: the previous key's
    window has ended and this run deletes it; `blocked`: why the plan cannot be carried out."""

    changes: list[str]
    replaces: list[str]
    rotates: list[str] = field(default_factory=list)
    retires: bool = False
    blocked: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.changes or self.rotates or self.retires)


HOUR_MS = 3600 * 1000


def previous_retires_at_ms(outputs: Mapping[str, Any], news: Mapping[str, Any]) -> int | None:
    """When the previous key's window ends: the current key's creation (the rotation) plus the
    declared overlapHours, so a shorter window declared later retires it sooner, and none (0 or
    absent) retires it at the next run. None: no previous key."""
    if not outputs.get("previous_api_key"):
        return None
    rotated = outputs.get("created_at_ms")
    return int(rotated) + overlap_hours(news) * HOUR_MS if isinstance(rotated, (int, float)) else 0


def overlap_hours(news: Mapping[str, Any]) -> int:
    """The declared window in hours (0: none). The engine hands numbers over as floats."""
    hours = news.get("overlap_hours")
    return int(hours) if isinstance(hours, (int, float)) and not isinstance(hours, bool) else 0


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
    retires_at = previous_retires_at_ms(olds, news)
    if retires_at is not None and is_unknown(news.get("overlap_hours")):
        retires = False  # not known yet: a preview cannot tell, the up will
    else:
        retires = retires_at is not None and now_ms >= retires_at
    if not replaces or overlap_hours(news) == 0 or news.get("delete_before_replace") is True \
            or "symbol" in replaces or not olds.get("api_key"):
        # Replaced as a new resource: the old one's keys (both, during a window) go with it. An
        # overlap does not span scopes: a new symbol is a new key for another pair.
        return DiffPlan(changes, replaces, retires=retires)
    blocked = None
    if retires_at is not None and not retires:
        blocked = (f"rotating it again now would delete its previous key (apiKey"
                   f" {str(olds.get('previous_api_key'))[:8]}…) before its window ends at"
                   f" {utc(retires_at)}: apply this change after that, or set overlapHours: 0"
                   " to replace the key and delete both old keys in this run")
    return DiffPlan(changes, [], rotates=replaces, retires=retires, blocked=blocked)


def utc(ms: float) -> str:
    """A moment as a person reads it: `2026-12-03 14:00 UTC`."""
    import datetime

    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime(
        "%Y-%m-%d %H:%M UTC")
