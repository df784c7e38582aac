"""The wire format of the sandbox exchange: routing, request parsing, responses and faults.

The exchange's rules live in `models.Exchange`; this module turns HTTP requests into calls of it
and its answers or `ExchangeError`s into Binance-shaped JSON responses. Admin routes (`/admin/*`,
unsigned; loopback clients with the data dir's admin token only) manage fault rules, the clock
skew and the request log.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import auth, errors, files
from .dialects import Dialect
from .errors import ExchangeError
from .faults import FaultRule, Faults
from .models import (
    DEFAULT_ISOLATED_SYMBOLS,
    DEFAULT_UID_WEIGHT_LIMIT,
    MAX_KEYS_PER_ACCOUNT,
    Exchange,
    RateLimiter,
)
from .store import Account, ApiKey, Store

MAX_BODY_BYTES = 64 * 1024

# The exchange, the calling account, the calling key, the parameters (less timestamp and signature).
Handler = Callable[[Exchange, Account, ApiKey, dict[str, str]], Any]


@dataclass(frozen=True)
class Route:
    weight: int
    params: frozenset[str]
    handler: Handler
    security: str = "TRADE"  # Binance's security type: a READ special key calls USER_DATA only


COMMON = frozenset({"timestamp", "recvWindow", "signature"})

ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/sapi/v1/margin/apiKey"): Route(
        1,
        COMMON | {"apiName", "symbol", "ip", "publicKey", "permissionMode"},
        lambda ex, acct, key, p: ex.create_special_key(
            acct, p.get("apiName"), p.get("symbol"), p.get("ip"), p.get("publicKey"),
            p.get("permissionMode"),
        ),
    ),
    ("GET", "/sapi/v1/margin/apiKey"): Route(
        1,
        COMMON | {"apiKey", "symbol"},
        lambda ex, acct, key, p: ex.query_special_key(acct, p.get("apiKey"), p.get("symbol")),
    ),
    ("GET", "/sapi/v1/margin/api-key-list"): Route(
        1, COMMON | {"symbol"}, lambda ex, acct, key, p: ex.list_special_keys(acct, p.get("symbol"))
    ),
    ("PUT", "/sapi/v1/margin/apiKey/ip"): Route(
        1,
        COMMON | {"apiKey", "symbol", "ip"},
        lambda ex, acct, key, p: ex.edit_ip(acct, p.get("apiKey"), p.get("symbol"), p.get("ip")),
    ),
    ("DELETE", "/sapi/v1/margin/apiKey"): Route(
        1,
        COMMON | {"apiKey", "apiName", "symbol"},
        lambda ex, acct, key, p: ex.delete_special_key(
            acct, p.get("apiKey"), p.get("apiName"), p.get("symbol")
        ),
    ),
    ("GET", "/sapi/v1/margin/isolated/account"): Route(
        10, COMMON | {"symbols"}, lambda ex, acct, key, p: ex.isolated_account(acct, p.get("symbols"))
    ),
    ("POST", "/sapi/v1/margin/exit-special-key-mode"): Route(
        10, COMMON, lambda ex, acct, key, p: ex.exit_special_key_mode(acct)
    ),
    ("GET", "/sapi/v1/account/apiRestrictions"): Route(
        1, COMMON, lambda ex, acct, key, p: ex.api_restrictions(acct)
    ),
    ("GET", "/sapi/v1/margin/account"): Route(
        10, COMMON, lambda ex, acct, key, p: ex.margin_account(acct)
    ),
    # The one /api route modelled, and so the one route a special key can call.
    ("GET", "/api/v3/account"): Route(
        20, COMMON | {"omitZeroBalances"}, lambda ex, acct, key, p: ex.account_info(acct, key),
        security="USER_DATA",
    ),
}


def parse_params(query: bytes, body: bytes) -> dict[str, str]:
    """Parameters from the query string and the form body; the query's value wins."""
    params: dict[str, str] = {}
    for raw in (body, query):
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise errors.bad_signature() from None
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                              errors="strict")
        except (ValueError, UnicodeDecodeError):
            raise errors.illegal_characters("query") from None
        params.update(pairs)
    return params


ADMIN_TOKEN_HEADER = "X-Sandbox-Admin-Token"
ADMIN_TOKEN_FILE = "admin-token"


class AdminTokenError(Exception):
    """The data dir's admin token could not be written: `serve` does not start without one."""


def read_admin_token(token_file: Path) -> str:
    """The token as the file holds it now; "" when the file is missing, empty or unreadable."""
    try:
        return token_file.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def ensure_admin_token(data_dir: Path) -> Path:
    """The data dir's admin token file, made (mode 0600, in one rename) where it is missing or
    empty; a token already there is kept, so clients holding it stay right across restarts."""
    token_file = data_dir / ADMIN_TOKEN_FILE
    if not read_admin_token(token_file):
        try:
            files.replace(token_file, (secrets.token_hex(16) + "\n").encode())
        except OSError as exc:
            raise AdminTokenError(f"cannot write the admin token {token_file}: {exc.strerror}") from exc
    return token_file


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], exchange: Exchange, faults: Faults,
                 admin_token_file: Path) -> None:
        super().__init__(address, RequestHandler)
        self.exchange = exchange
        self.faults = faults
        # Read at every admin call: the file is the token. Missing or empty, it refuses them all.
        self.admin_token_file = admin_token_file

    def admin_token(self) -> str:
        return read_admin_token(self.admin_token_file)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        text = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{text}]" if ":" in text else text
        return f"http://{shown}:{port}"


class DropConnection(Exception):
    """Close the connection without an answer, as a failing network would."""


class RequestHandler(BaseHTTPRequestHandler):
    server: SandboxServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes on a kept-alive connection: with Nagle's algorithm on,
    # the body waits for the client's delayed ACK of the headers, 40 ms on every answer (the
    # sandbox then looked like a slow exchange, and capped every client's concurrency).
    disable_nagle_algorithm = True
    server_version = "sandbox-exchange"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # The stdlib logs full request lines, which carry signatures; the Faults log replaces it.
        return

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        path = split.path
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._answer(413, {"code": -1000, "msg": "Request body too large."})
            return
        body = self.rfile.read(length) if length else b""
        query = split.query.encode("latin-1")
        if path.startswith("/admin/"):
            self._admin(method, path, body)
            return
        faults = self.server.faults
        started_ms = int(time.time() * 1000)
        self._account_id: str | None = None  # this request's caller, once known
        rule = faults.match(method, path)
        status: int = 200
        payload: Any = None
        headers: dict[str, str] = {}
        try:
            if rule is not None and rule.action == "latency":
                time.sleep(rule.delay_ms / 1000)
                rule = None
            if rule is not None and rule.action == "drop_before":
                raise DropConnection
            if rule is not None and rule.action == "error":
                raise ExchangeError(rule.code, rule.msg, status=rule.status, retry_after=rule.retry_after)
            payload, headers = self._dispatch(method, path, query, body)
            if rule is not None and rule.action == "latency_after":
                time.sleep(rule.delay_ms / 1000)
            if rule is not None and rule.action == "drop_after":
                raise DropConnection
            if rule is not None and rule.action == "error_after":
                raise ExchangeError(rule.code, rule.msg, status=rule.status)
        except DropConnection:
            faults.record(method, path, 0, None, started_ms, self._account_id)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        except ExchangeError as err:
            status, payload = err.status, err.body()
            if err.retry_after is not None:
                headers["Retry-After"] = str(err.retry_after)
        except Exception:  # noqa: BLE001 - a sandbox bug must still answer like an exchange
            unknown = errors.unknown_error()
            status, payload = unknown.status, unknown.body()
        code = payload.get("code") if isinstance(payload, dict) and status != 200 else None
        faults.record(method, path, status, code if isinstance(code, int) else None, started_ms,
                      self._account_id)
        self._answer(status, payload, headers)

    def _dispatch(
        self, method: str, path: str, query: bytes, body: bytes
    ) -> tuple[Any, dict[str, str]]:
        exchange = self.server.exchange
        if (method, path) == ("GET", "/api/v3/time"):
            return {"serverTime": exchange.clock()}, {}
        route = ROUTES.get((method, path))
        if route is None:
            raise ExchangeError(-1000, f"Unknown endpoint {method} {path}.", status=404)
        account, key = exchange.caller(self.headers.get("X-MBX-APIKEY"), path,
                                       self.client_address[0], route.security)
        self._account_id = account.account_id
        if method == "DELETE" and exchange.dialect.delete_body == "refuse":
            body = b""  # the margin API reads a DELETE's parameters from the query string only
        params = parse_params(query, body)
        auth.check_timestamp(params.get("timestamp"), params.get("recvWindow"), exchange.clock())
        auth.verify_signature(key, query, body)
        for name in params:
            if name not in route.params:
                raise errors.unknown_parameter(name)
        used = exchange.charge(account, path, route.weight)
        headers = {"X-SAPI-USED-UID-WEIGHT-1M": str(used)}
        clean = {k: v for k, v in params.items() if k not in COMMON}
        return route.handler(exchange, account, key, clean), headers

    def _admin(self, method: str, path: str, body: bytes) -> None:
        if not ipaddress.ip_address(self.client_address[0]).is_loopback:
            self._answer(403, {"code": -1002, "msg": "The admin interface answers loopback only."})
            return
        # A web page in a browser on this machine can reach loopback too: the Host must be ours
        # (no DNS rebinding), the body JSON (no form or text/plain cross-origin POST), and the
        # token from the data dir (mode 0600) must come with every call.
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        token = self.server.admin_token()
        if not token:
            # Fail closed: no token is never "no authentication".
            self._answer(403, {"code": -1002, "msg": (
                f"Admin calls are refused: the admin token {self.server.admin_token_file} is"
                " missing or empty. Restart serve on this data dir to make a new one.")})
            return
        given = self.headers.get(ADMIN_TOKEN_HEADER, "").encode("utf-8", "replace")
        if host not in ("127.0.0.1", "localhost", "::1") or not secrets.compare_digest(
                given, token.encode()):
            self._answer(403, {"code": -1002, "msg": "Admin calls need the data dir's admin token."})
            return
        if method in ("POST", "DELETE") and body and not (
                self.headers.get("Content-Type") or "").startswith("application/json"):
            self._answer(415, {"code": -1000, "msg": "Admin calls take application/json."})
            return
        faults = self.server.faults
        try:
            data = json.loads(body or b"{}")
            if (method, path) == ("POST", "/admin/faults"):
                rule = faults.add(FaultRule(**data))
                self._answer(200, {"id": rule.id})
            elif (method, path) == ("DELETE", "/admin/faults"):
                faults.clear()
                self._answer(200, {})
            elif (method, path) == ("POST", "/admin/clock"):
                faults.skew_ms = int(data["skewMs"])
                self._answer(200, {"skewMs": faults.skew_ms})
            elif (method, path) == ("POST", "/admin/rate-limit"):
                self.server.exchange.rate_limiter.limit = int(data["uidWeightPerMinute"])
                self._answer(200, {})
            elif (method, path) == ("GET", "/admin/state"):
                self._answer(200, faults.snapshot())
            elif (method, path) == ("DELETE", "/admin/requests"):
                faults.reset_log()
                self._answer(200, {})
            elif (method, path) == ("GET", "/admin/keys"):
                self._answer(200, self.server.exchange.all_special_keys())
            elif (method, path) == ("GET", "/admin/dialect"):
                self._answer(200, self.server.exchange.dialect.as_json())
            elif (method, path) == ("POST", "/admin/dialect"):
                self.server.exchange.dialect = Dialect.from_json(data)
                self._answer(200, self.server.exchange.dialect.as_json())
            elif (method, path) == ("POST", "/admin/accounts"):
                # What `account create` does, without a process per account (tests make hundreds).
                created = self.server.exchange.create_account(
                    str(data.get("type", "CROSS_MARGIN_CLASSIC")), str(data.get("keyType", "HMAC")),
                    tuple(str(s) for s in data.get("isolatedSymbols", DEFAULT_ISOLATED_SYMBOLS)),
                    dict(data.get("restrictions") or {}))
                self._answer(200, created.credentials())
            elif (method, path) == ("POST", "/admin/caller-address"):
                # The public address this account's loopback requests stand for (key whitelists).
                self._answer(200, self.server.exchange.set_caller_address(
                    str(data["accountId"]), str(data["address"])))
            elif (method, path) == ("DELETE", "/admin/caller-address"):
                self._answer(200, self.server.exchange.set_caller_address(str(data["accountId"]), None))
            elif method == "POST" and path.startswith("/admin/keys/"):
                # Drift rehearsal: a key listed otherwise than it was made.
                self._answer(200, self.server.exchange.set_key_permission_mode(
                    path.removeprefix("/admin/keys/"), str(data["permissionMode"])))
            elif method == "POST" and path.startswith("/admin/accounts/"):
                account_id = path.removeprefix("/admin/accounts/")
                self._answer(200, self.server.exchange.set_account_flags(account_id, data))
            else:
                self._answer(404, {"code": -1000, "msg": f"Unknown admin route {method} {path}."})
        except (TypeError, ValueError, KeyError) as exc:
            self._answer(400, {"code": -1000, "msg": f"Bad admin request: {exc}"})

    def _answer(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def make_server(
    data_dir: Path, host: str = "127.0.0.1", port: int = 0, uid_weight_limit: int | None = None,
    max_api_keys: int | None = None, dialect: Dialect | None = None,
    rate_window_ms: int | None = None,
) -> SandboxServer:
    faults = Faults()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_dir.chmod(0o700)
    token_file = ensure_admin_token(data_dir)
    limiter = RateLimiter(uid_weight_limit or DEFAULT_UID_WEIGHT_LIMIT, rate_window_ms)
    exchange = Exchange(Store(data_dir), clock=faults.now_ms, rate_limiter=limiter,
                        max_keys_per_account=max_api_keys or MAX_KEYS_PER_ACCOUNT, dialect=dialect)
    return SandboxServer((host, port), exchange, faults, token_file)
