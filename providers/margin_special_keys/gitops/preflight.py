"""A read-only preflight of one stack's account: is everything in place for the first `pulumi up`?

It reads the stack's provider settings exactly as the provider does, and sends only GET requests:
the server time, one signed list of the special keys (the signature and key type work), the
provider key's own API restrictions, the cross margin account's type, the special keys of every
scope and the room left under Binance's 30 keys, the isolated pairs the stack declares, and the
declared apiNames that already exist (the adopt case). Each row is ok, warn or fail, and says
what to do. With a recorder, every raw answer is written, redacted, for the contract tests.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

OK, WARN, FAIL = "ok", "warn", "fail"
# Every check the preflight prints a row for, in order ("pair" and "name" rows carry the pair or
# the key's name after it); docs/operations.md lists the same (tests/provider/test_preflight.py).
CHECKS = ("clock", "signed request", "key permissions", "key IP restriction", "key withdrawals",
          "margin account", "pair", "room", "name")


@dataclass
class Row:
    check: str
    status: str
    detail: str
    fix: str = ""


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def run_preflight(client: Any, *, other_api_keys: int, recv_window_ms: int,
                  declared: list[tuple[str, str | None, bool]],
                  clock: Callable[[], float] = time.time) -> list[Row]:
    """`declared`: (apiName, symbol, adopted) of each key the stack declares."""
    from ..binance.errors import AuthenticationError, SignatureError
    from ..errors import BinanceError

    rows: list[Row] = []

    # 1. The clock, against the exchange's.
    try:
        before = clock()
        server_ms = client.server_time()
        local_ms = (before + clock()) / 2 * 1000
        offset = int(server_ms - local_ms)
        status = OK if abs(offset) < recv_window_ms / 2 else WARN if abs(offset) < recv_window_ms else FAIL
        rows.append(Row("clock", status, f"offset {offset:+d} ms from Binance's clock"
                        f" (recvWindow {recv_window_ms} ms)",
                        "" if status == OK
                        else "sync this machine's clock (NTP), or raise binance:recvWindow"))
    except BinanceError as exc:
        rows.append(Row("clock", FAIL, _first_line(exc), "check binance:baseUrl and the network path"))
        return rows

    # 2. One signed read: the provider key, its secret and its key type work. The account's keys
    # are read as the provider reads them (AccountKeys): the room below counts this list too.
    from ..account import AccountKeys

    keys = AccountKeys(client, other_api_keys)
    try:
        keys.listing(None)
        rows.append(Row("signed request", OK, "a signed read of the special-key list succeeded"))
    except SignatureError as exc:
        rows.append(Row("signed request", FAIL, _first_line(exc),
                        "binance:privateKey or binance:secretKey must belong to binance:apiKey, of"
                        " the same key type (Ed25519, RSA or HMAC)"))
        return rows
    except AuthenticationError as exc:
        rows.append(Row("signed request", FAIL, _first_line(exc),
                        "check binance:apiKey, that it has \"Enable Spot & Margin Trading\", and"
                        " that this machine's IP is on its list"))
        return rows
    except BinanceError as exc:
        rows.append(Row("signed request", FAIL, _first_line(exc), "see the message"))
        return rows

    # 3. The provider key's own restrictions.
    try:
        restrictions = client.api_restrictions()
    except BinanceError as exc:
        rows.append(Row("key permissions", WARN, f"could not read them: {_first_line(exc)}", ""))
    else:
        if restrictions.get("enableSpotAndMarginTrading") is False:
            rows.append(Row("key permissions", FAIL, "enableSpotAndMarginTrading is off",
                            "enable \"Enable Spot & Margin Trading\" on the provider key"))
        else:
            rows.append(Row("key permissions", OK, "Enable Spot & Margin Trading is on"))
        if restrictions.get("ipRestrict") is False:
            rows.append(Row("key IP restriction", WARN, "the provider key accepts any IP address",
                            "restrict the provider key to your runners' fixed egress IPs"))
        else:
            rows.append(Row("key IP restriction", OK, "the provider key is restricted to IPs"))
        if restrictions.get("enableWithdrawals") is True:
            rows.append(Row("key withdrawals", WARN, "the provider key may withdraw funds",
                            "turn withdrawals off: managing special keys never needs them"))
        else:
            rows.append(Row("key withdrawals", OK, "the provider key cannot withdraw funds"))

    # 4. The account's margin type: special keys need Cross Margin Classic (or Portfolio Margin Pro).
    try:
        account_type = client.margin_account_type()
        ok = account_type in ("MARGIN_1", "CROSS_MARGIN_CLASSIC", "PORTFOLIO_MARGIN_PRO")
        rows.append(Row("margin account", OK if ok else FAIL, f"account type {account_type}",
                        "" if ok else "special keys need Cross Margin Classic, Isolated Margin or"
                        " Portfolio Margin Pro; Portfolio Margin accounts cannot hold them"))
    except BinanceError as exc:
        rows.append(Row("margin account", FAIL, _first_line(exc),
                        "open a margin account (Portfolio Margin accounts cannot hold special keys)"))

    # 5. The isolated pairs declared, and the keys of every scope against the account's limit,
    # counted as the provider counts them (AccountKeys.room).
    room = keys.room()
    scopes = room.by_scope
    for pair in sorted({s for _, s, _ in declared if s}):
        if pair in scopes:
            rows.append(Row(f"pair {pair}", OK, "the isolated margin pair exists and is enabled"))
        else:
            rows.append(Row(f"pair {pair}", FAIL, "no enabled isolated margin account for this pair",
                            f"open {pair} in Isolated Margin, or remove the keys that name it"))
    by_scope = ", ".join(f"{scope or 'cross margin'} {len(held)}" for scope, held in scopes.items())
    new_keys = [(name, symbol) for name, symbol, adopted in declared if not adopted]
    existing = {(k.api_name, scope) for scope, held in scopes.items() for k in held}
    to_create = [key for key in new_keys if key not in existing]
    status = OK if room.free >= len(to_create) else FAIL
    rows.append(Row("room", status,
                    f"{room.special_keys} special keys ({by_scope}) + binance:otherApiKeys={other_api_keys}:"
                    f" room for {room.free} of the {len(to_create)} new key(s) declared",
                    "" if status == OK else "free keys on the account, or declare fewer"))

    # 6. Declared names that already exist: adopt them, or they will be refused as duplicates.
    for name, symbol in new_keys:
        if (name, symbol) in existing:
            found = next(k for k in scopes[symbol] if k.api_name == name)
            rows.append(Row(f"name {name!r}", WARN,
                            f"already exists on {symbol or 'cross margin'} (apiKey {found.api_key[:8]}…)",
                            f"adopt it (adoptApiKey: {found.api_key}) or delete it; if this stack"
                            " already manages it, nothing to do"))
    return rows


def table(stack: str, rows: list[Row]) -> str:
    lines = [f"### preflight: `{stack}`", "", "| check | status | detail | what to do |",
             "|---|---|---|---|"]
    mark = {OK: "✅ ok", WARN: "⚠️ warn", FAIL: "❌ fail"}
    for row in rows:
        cells = [row.check, mark[row.status], row.detail, row.fix]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def as_json(results: dict[str, list[Row]]) -> str:
    return json.dumps({stack: [asdict(r) for r in rows] for stack, rows in results.items()}, indent=2)


class Recorder:
    """Writes each raw answer with its request line, as contract-test fixtures a firm may hand back.

    An answer keeps only the fields our readers read (binance/client.py ANSWER_FIELDS): balances,
    positions and everything else Binance sends are left out. Of those, every apiKey becomes a
    stable placeholder, every apiName another, every IP address a documentation address, the
    account's uid a constant, and secrets are dropped; the request line keeps no signature,
    timestamp or secret."""

    def __init__(self, directory: Path, secrets: list[str]) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._secrets = [s for s in secrets if s]
        self._names: dict[tuple[str, str], str] = {}
        self._count = 0

    def _placeholder(self, kind: str, value: str) -> str:
        prefix = {"apiKey": "REDACTEDKEY", "apiName": "redacted-name-", "ip": ""}[kind]
        if kind == "ip":
            if value in ("", "0.0.0.0"):  # Binance's "no address": its meaning is the shape
                return value
            number = len([k for k in self._names if k[0] == "ip"]) + 1
            made = f"2001:db8::{number:x}" if ":" in value else f"203.0.113.{(number - 1) % 254 + 1}"
            return self._names.setdefault((kind, value), made)
        number = len([k for k in self._names if k[0] == kind]) + 1
        return self._names.setdefault((kind, value), f"{prefix}{number:02d}")

    def _replaced(self, name: str, value: Any) -> Any:
        if name in ("apiKey", "apiName") and value:
            return self._placeholder(name, str(value))
        if name == "secretKey":
            return None
        if name == "uid" and value is not None:
            return 100000001
        if name == "ip" and isinstance(value, str):
            return ",".join(self._placeholder("ip", part.strip()) for part in value.split(","))
        if name == "ip" and isinstance(value, list):
            return [self._placeholder("ip", str(part).strip()) for part in value]
        if isinstance(value, str):
            for secret in self._secrets:
                value = value.replace(secret, "REDACTED")
        return value

    def _kept(self, shape: Any, value: Any, name: str = "") -> Any:
        """`value` reduced to `shape` (binance/client.py ANSWER_FIELDS), each value replaced."""
        if isinstance(shape, list):
            return [self._kept(shape[0], item, name) for item in value] if isinstance(value, list) \
                else _opaque(value)
        if isinstance(shape, dict):
            return {k: self._kept(inner, value[k], k) for k, inner in shape.items() if k in value} \
                if isinstance(value, dict) else _opaque(value)
        return _opaque(value) if isinstance(value, (dict, list)) else self._replaced(name, value)

    def __call__(self, method: str, path: str, params: dict[str, Any], status: int, body: Any) -> None:
        from ..binance.client import ANSWER_FIELDS, ERROR_FIELDS

        self._count += 1
        kept = {k: (self._placeholder("apiKey", str(v)) if k == "apiKey" else v) for k, v in params.items()
                if k not in ("signature", "timestamp", "recvWindow")}
        query = "&".join(f"{k}={v}" for k, v in sorted(kept.items()))
        endpoint = f"{method} {path}"
        shape = ANSWER_FIELDS.get(endpoint, {}) if status == 200 else ERROR_FIELDS
        record = {
            "endpoint": endpoint + (f"?{query}" if query else ""),
            "source": "recorded by `python -m margin_special_keys.gitops preflight --record`",
            "read": time.strftime("%Y-%m-%d", time.gmtime()),
            "status": status,
            "responses": [self._kept(shape, body)],
        }
        name = re.sub(r"[^A-Za-z0-9]+", "-", f"{self._count:02d}-{method}-{path}").strip("-")
        target = self.directory / f"{name}.json"
        target.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        target.chmod(0o600)


def _opaque(value: Any) -> Any:
    """An answer part of a shape the reader does not expect: kept as its type alone, so the
    contract test still sees that shape and refuses it."""
    if isinstance(value, dict):
        return {}
    if isinstance(value, list):
        return []
    return "REDACTED" if isinstance(value, str) else value
