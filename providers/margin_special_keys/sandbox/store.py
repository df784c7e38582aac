"""SQLite persistence of the sandbox exchange: accounts and their API keys.

Every change runs inside `transaction()`, which holds SQLite's write lock from the first read
(BEGIN IMMEDIATE): a rule such as "at most 30 keys per account" is checked and the key inserted
under one lock, so concurrent requests, or a CLI beside a running server, neither lose nor
duplicate a key.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    account_id TEXT PRIMARY KEY,
    account_type TEXT NOT NULL,
    isolated_symbols TEXT NOT NULL,
    special_key_cooldown_until_ms INTEGER NOT NULL DEFAULT 0,
    flags TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS api_keys (
    api_key TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(account_id),
    is_special INTEGER NOT NULL,
    key_type TEXT NOT NULL,
    secret_key TEXT,
    public_key TEXT,
    api_name TEXT NOT NULL,
    symbol TEXT NOT NULL,
    ips TEXT NOT NULL,
    permission_mode TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS api_keys_account ON api_keys(account_id, is_special, symbol);
"""


@dataclass(frozen=True)
class Account:
    account_id: str
    account_type: str
    isolated_symbols: tuple[str, ...]
    special_key_cooldown_until_ms: int = 0
    # What the sandbox's administration sets and Binance decides elsewhere: the account key's
    # API restrictions, the account's uid, outstanding liability, liquidation.
    flags: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ApiKey:
    api_key: str
    account_id: str
    is_special: bool
    key_type: str  # HMAC_SHA256, RSA or Ed25519, as Binance names them
    secret_key: str | None  # HMAC keys only: the exchange must know it to verify signatures
    public_key: str | None  # PEM, RSA and Ed25519 keys only
    api_name: str
    symbol: str  # "" for the cross margin account
    ips: tuple[str, ...]  # empty means "no IP set" (shown as 0.0.0.0)
    permission_mode: str
    created_ms: int


class Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def add_account(self, account: Account) -> None:
        self._conn.execute(
            "INSERT INTO accounts VALUES (?, ?, ?, ?, ?)",
            (
                account.account_id,
                account.account_type,
                json.dumps(list(account.isolated_symbols)),
                account.special_key_cooldown_until_ms,
                json.dumps(account.flags),
            ),
        )

    def account(self, account_id: str) -> Account | None:
        row = self._conn.execute(
            "SELECT * FROM accounts WHERE account_id = ?", (account_id,)
        ).fetchone()
        if row is None:
            return None
        return Account(row[0], row[1], tuple(json.loads(row[2])), row[3], json.loads(row[4]))

    def set_flags(self, account_id: str, flags: dict[str, Any]) -> None:
        self._conn.execute(
            "UPDATE accounts SET flags = ? WHERE account_id = ?", (json.dumps(flags), account_id)
        )

    def set_cooldown(self, account_id: str, until_ms: int) -> None:
        self._conn.execute(
            "UPDATE accounts SET special_key_cooldown_until_ms = ? WHERE account_id = ?",
            (until_ms, account_id),
        )

    def add_key(self, key: ApiKey) -> None:
        self._conn.execute(
            "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " (SELECT COALESCE(MAX(seq), 0) + 1 FROM api_keys))",
            (
                key.api_key,
                key.account_id,
                int(key.is_special),
                key.key_type,
                key.secret_key,
                key.public_key,
                key.api_name,
                key.symbol,
                json.dumps(list(key.ips)),
                key.permission_mode,
                key.created_ms,
            ),
        )

    def key(self, api_key: str) -> ApiKey | None:
        row = self._conn.execute("SELECT * FROM api_keys WHERE api_key = ?", (api_key,)).fetchone()
        return None if row is None else _key_from_row(row)

    def keys(
        self, account_id: str | None = None, special: bool | None = None, symbol: str | None = None
    ) -> list[ApiKey]:
        clauses: list[str] = []
        args: list[object] = []
        if account_id is not None:
            clauses.append("account_id = ?")
            args.append(account_id)
        if special is not None:
            clauses.append("is_special = ?")
            args.append(int(special))
        if symbol is not None:
            clauses.append("symbol = ?")
            args.append(symbol)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._conn.execute(f"SELECT * FROM api_keys{where} ORDER BY seq", args).fetchall()
        return [_key_from_row(r) for r in rows]

    def count_keys(self, account_id: str) -> int:
        row = self._conn.execute(
            "SELECT COUNT(*) FROM api_keys WHERE account_id = ?", (account_id,)
        ).fetchone()
        return int(row[0])

    def set_ips(self, api_key: str, ips: tuple[str, ...]) -> None:
        self._conn.execute(
            "UPDATE api_keys SET ips = ? WHERE api_key = ?", (json.dumps(list(ips)), api_key)
        )

    def set_permission_mode(self, api_key: str, mode: str) -> None:
        self._conn.execute("UPDATE api_keys SET permission_mode = ? WHERE api_key = ?", (mode, api_key))

    def delete_key(self, api_key: str) -> None:
        self._conn.execute("DELETE FROM api_keys WHERE api_key = ?", (api_key,))


def _key_from_row(row: tuple[object, ...]) -> ApiKey:
    return ApiKey(
        api_key=str(row[0]),
        account_id=str(row[1]),
        is_special=bool(row[2]),
        key_type=str(row[3]),
        secret_key=None if row[4] is None else str(row[4]),
        public_key=None if row[5] is None else str(row[5]),
        api_name=str(row[6]),
        symbol=str(row[7]),
        ips=tuple(json.loads(str(row[8]))),
        permission_mode=str(row[9]),
        created_ms=int(str(row[10])),
    )


class Store:
    """The exchange's state in `DATA_DIR/exchange.sqlite3`."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = data_dir / "exchange.sqlite3"
        self.path.touch(mode=0o600)  # it holds HMAC secrets: the owner's alone
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(accounts)")}
        if "flags" not in columns:  # a data dir from before account flags
            self._conn.execute("ALTER TABLE accounts ADD COLUMN flags TEXT NOT NULL DEFAULT '{}'")

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
