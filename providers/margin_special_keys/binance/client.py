"""Binance's margin special-key endpoints, one method per wire operation.

Every call is signed, has a timeout, and follows Binance's rules for trouble:
- -1021 (clock off): sync with GET /api/v3/time once and try again;
- 429 / 418: wait as Retry-After says, within a bound, and try again (the request was refused);
- 5xx, timeouts, dropped connections: the outcome is unknown. Reads, IP edits and deletes are
  retried (doing them twice does no harm); a create raises `OutcomeUnknown` so the caller can
  reconcile against the key list before anything is retried.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ..errors import MalformedAnswer, NotSent, OutcomeUnknown
from ..key_type import KeyType
from .errors import BinanceAPIError, RateLimited, ServerError, TimestampError, error_for
from .signing import Signer

NO_IP = "0.0.0.0"
MAX_ANSWER_BYTES = 4 * 1024 * 1024
USER_AGENT = "margin-special-keys/0.1"


RETRY_AFTER_BOUNDS = (1.0, 60.0)  # seconds: the least wait, and the most a call waits


def retry_after_seconds(header: str | None) -> float | None:
    """Retry-After as seconds, at least 1; a value that is not a finite number counts as absent,
    so `0.000001` cannot make a flood of requests and `nan` or `-5` cannot crash a run."""
    if header is None:
        return None
    try:
        value = float(header)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    low, high = RETRY_AFTER_BOUNDS
    # Above the bound the value is kept: the caller fails at once instead of waiting it out.
    return max(value, low)


def _flag(value: Any) -> bool:
    """A documented boolean that may arrive as a string; absent counts as true."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "")
    return bool(value)


def _never_connected(exc: Exception) -> bool:
    """True when the TCP connection was never made, so the request never left this machine."""
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (NewConnectionError, NameResolutionError)):
            return True
        reason = getattr(seen, "reason", None)
        nxt = reason if isinstance(reason, BaseException) else None
        if nxt is None and seen.args and isinstance(seen.args[0], BaseException):
            nxt = seen.args[0]
        seen = nxt if nxt is not seen else None
    return False


def _text(value: Any) -> str | None:
    """A string field that may be missing, null, or a number sent as a string or not."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_ips(raw: Any) -> tuple[str, ...]:
    """The `ip` field as documented: one comma-separated string. `0.0.0.0` is "just an initial
    state reference" (Query Special Key docs) wherever it appears, so it never counts as an
    address; a JSON list is read the same way."""
    if raw is None:
        return ()
    parts = raw if isinstance(raw, list) else str(raw).split(",")
    return tuple(p for p in (str(x).strip() for x in parts) if p and p != NO_IP)


@dataclass(frozen=True)
class CreatedKey:
    api_key: str
    secret_key: str | None
    key_type: KeyType | None

    def __repr__(self) -> str:
        return f"CreatedKey(api_key={self.api_key!r}, key_type={self.key_type!r}, secret_key=<secret>)"


@dataclass(frozen=True)
class SpecialKey:
    api_key: str
    api_name: str
    ips: tuple[str, ...]
    key_type: KeyType | None  # None: the exchange did not say
    permission_mode: str | None

    @classmethod
    def from_wire(cls, data: Any) -> SpecialKey | None:
        """A key as Binance documents it, tolerant of missing or null fields, any spelling or
        case of `type`, and numbers sent as strings. None for a body that names no apiKey
        (`{}` and the like): the caller decides "gone" from the key list, not from this."""
        if not isinstance(data, dict):
            return None
        api_key = _text(data.get("apiKey"))
        if api_key is None:
            return None
        mode = _text(data.get("permissionMode"))
        return cls(
            api_key=api_key,
            api_name=_text(data.get("apiName")) or "",
            ips=parse_ips(data.get("ip")),
            key_type=KeyType.from_wire(data.get("type")),
            permission_mode=mode.upper() if mode else None,
        )


# --- readers of each documented response: pure, so documented and recorded answers test them ---


_KEY = dict.fromkeys(("apiKey", "apiName", "ip", "type", "permissionMode"))
# What our readers (below, and the preflight's reads) take of each endpoint's answer, as the
# answer's shape: a map's fields, a list's items; None where a value is read. The contract tests'
# subject, and all that a recording keeps (gitops/preflight.py Recorder).
ANSWER_FIELDS: dict[str, Any] = {
    "POST /sapi/v1/margin/apiKey": dict.fromkeys(("apiKey", "secretKey", "type")),
    "GET /sapi/v1/margin/apiKey": _KEY,
    "GET /sapi/v1/margin/api-key-list": [_KEY],
    "GET /sapi/v1/margin/isolated/account": {
        "assets": [dict.fromkeys(("symbol", "isolatedCreated", "enabled"))]},
    "GET /api/v3/time": {"serverTime": None},
    "GET /sapi/v1/account/apiRestrictions": dict.fromkeys(
        ("ipRestrict", "enableSpotAndMarginTrading", "enableWithdrawals")),
    "GET /sapi/v1/margin/account": {"accountType": None},
    "GET /api/v3/account": {"uid": None},
}
ERROR_FIELDS: dict[str, Any] = {"code": None, "msg": None}

def read_created_key(data: Any) -> CreatedKey:
    api_key = _text(data.get("apiKey")) if isinstance(data, dict) else None
    if api_key is None:
        # A 200 that does not name the new key: it may exist all the same. Reconciled like a 5xx.
        raise OutcomeUnknown("create special key: the exchange's answer named no apiKey;"
                             " the outcome is unknown")
    return CreatedKey(api_key, _text(data.get("secretKey")), KeyType.from_wire(data.get("type")))


def read_key_list(data: Any) -> list[SpecialKey]:
    if isinstance(data, dict) and not data:
        return []  # an empty object where an empty list was expected
    if not isinstance(data, list):
        raise MalformedAnswer("list special keys: the exchange did not answer with a list")
    return [key for key in map(SpecialKey.from_wire, data) if key is not None]


def read_usable_pairs(data: Any) -> list[str]:
    """Isolated pairs that exist and are enabled (`isolatedCreated`, `enabled`)."""
    assets = data.get("assets") if isinstance(data, dict) else None
    return [
        symbol for asset in (assets or []) if isinstance(asset, dict)
        if (symbol := _text(asset.get("symbol")))
        and _flag(asset.get("isolatedCreated")) and _flag(asset.get("enabled"))
    ]


def read_server_time(data: Any) -> int:
    try:
        return int(str(data["serverTime"]))
    except (KeyError, TypeError, ValueError):
        raise MalformedAnswer("read server time: no serverTime in the answer") from None


@dataclass(frozen=True)
class RetryPolicy:
    max_wait_seconds: float = 60.0  # total Retry-After waiting a call accepts
    rate_limited_attempts: int = 5
    idempotent_attempts: int = 3
    backoff_seconds: float = 0.5


class BinanceClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        signer: Signer,
        *,
        recv_window_ms: int = 5000,
        timeout_seconds: float = 10.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        observer: Callable[[str, str, dict[str, Any], int, Any], None] | None = None,
        trust_environment: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._signer = signer
        self.recv_window_ms = recv_window_ms
        self.timeout_seconds = timeout_seconds
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        # Sees (method, path, parameters, HTTP status, parsed body) of every answer: the
        # preflight's recorder. Never given the signature's inputs beyond the parameters.
        self._observer = observer
        self._trust_environment = trust_environment
        from ..settings import is_binance_endpoint

        self._speaks_for_binance = is_binance_endpoint(self.base_url)
        self._offset_ms = 0
        self._lock = threading.Lock()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"BinanceClient({self.base_url!r}, api_key=<hidden>)"

    # --- the wire operations ---

    def server_time(self) -> int:
        return read_server_time(self._send("GET", "/api/v3/time", None, "read server time"))

    def create_special_key(
        self,
        api_name: str,
        symbol: str | None,
        ips: list[str],
        public_key: str | None,
        permission_mode: str | None,
    ) -> CreatedKey:
        params: dict[str, Any] = {"apiName": api_name}
        if symbol:
            params["symbol"] = symbol
        if ips:
            params["ip"] = ",".join(ips)
        if public_key:
            params["publicKey"] = public_key  # form-encoded once by urlencode, never by hand
        if permission_mode:
            params["permissionMode"] = permission_mode
        return read_created_key(self._signed("POST", "/sapi/v1/margin/apiKey", params,
                                             "create special key", idempotent=False))

    def query_special_key(self, api_key: str, symbol: str | None) -> SpecialKey | None:
        """The key, or None when the answer names no key (`{}`, or another apiKey's). Binance
        documents no "not found" answer: callers confirm absence against the key list."""
        params = self._scoped({"apiKey": api_key}, symbol)
        key = SpecialKey.from_wire(self._signed("GET", "/sapi/v1/margin/apiKey", params,
                                                "query special key"))
        return key if key is not None and key.api_key == api_key else None

    def list_special_keys(self, symbol: str | None) -> list[SpecialKey]:
        return read_key_list(self._signed("GET", "/sapi/v1/margin/api-key-list",
                                          self._scoped({}, symbol), "list special keys"))

    def isolated_symbols(self) -> list[str]:
        """The account's isolated margin pairs that exist and are enabled (Query Isolated
        Margin Account Info: `isolatedCreated`, `enabled`); a pair of neither holds no keys."""
        return read_usable_pairs(self._signed("GET", "/sapi/v1/margin/isolated/account", {},
                                              "list isolated margin pairs"))

    def api_restrictions(self) -> dict[str, Any]:
        """The calling key's own permissions (GET /sapi/v1/account/apiRestrictions)."""
        data = self._signed("GET", "/sapi/v1/account/apiRestrictions", {}, "read API key restrictions")
        return dict(data) if isinstance(data, dict) else {}

    def margin_account_type(self) -> str:
        """`accountType` of Query Cross Margin Account Details: MARGIN_1 is Cross Margin Classic."""
        data = self._signed("GET", "/sapi/v1/margin/account", {}, "read the margin account")
        return (_text(data.get("accountType")) if isinstance(data, dict) else None) or "unknown"

    def account_uid(self) -> int | None:
        """The account's numeric uid (GET /api/v3/account): who the provider key signs for."""
        data = self._signed("GET", "/api/v3/account", {"omitZeroBalances": "true"},
                            "read the account")
        try:
            return int(str(data["uid"])) if isinstance(data, dict) else None
        except (KeyError, ValueError):
            return None

    def edit_ip(self, api_key: str, symbol: str | None, ips: list[str]) -> None:
        params = self._scoped({"apiKey": api_key, "ip": ",".join(ips) if ips else NO_IP}, symbol)
        self._signed("PUT", "/sapi/v1/margin/apiKey/ip", params, "edit special key IPs")

    def delete_special_key(self, api_key: str, symbol: str | None) -> None:
        """Delete by apiKey, never by name (by name, Binance deletes every key of that name).
        An error answer may mean "already gone": the caller asks the key list."""
        params = self._scoped({"apiKey": api_key}, symbol)
        self._signed("DELETE", "/sapi/v1/margin/apiKey", params, "delete special key")

    def exit_special_key_mode(self) -> None:
        """Exit Special Key Mode (Cross Margin Classic): deletes every cross margin special key
        of the account at once and starts Binance's 24-hour cooldown on creating new ones."""
        self._signed("POST", "/sapi/v1/margin/exit-special-key-mode", {},
                     "exit special key mode", idempotent=False)

    # --- plumbing ---

    @staticmethod
    def _scoped(params: dict[str, Any], symbol: str | None) -> dict[str, Any]:
        if symbol:
            params["symbol"] = symbol
        return params

    def _session(self) -> Any:
        session = getattr(self._local, "session", None)
        if session is None:
            import requests  # imported here: the provider module must import fast

            session = requests.Session()
            # Proxies and CA bundles from the environment only when the settings say so.
            session.trust_env = self._trust_environment
            session.headers["User-Agent"] = USER_AGENT
            self._local.session = session
        return session

    def _now_ms(self) -> int:
        return int(time.time() * 1000) + self._offset_ms

    def sync_time(self) -> None:
        before = time.time()
        server = self.server_time()
        after = time.time()
        with self._lock:
            self._offset_ms = int(server - (before + after) / 2 * 1000)

    def _signed(
        self, method: str, path: str, params: dict[str, Any], operation: str,
        *, idempotent: bool = True,
    ) -> Any:
        synced = False
        waited = 0.0
        attempt = 0
        rate_limited = 0
        while True:
            attempt += 1
            try:
                return self._send(method, path, params, operation, signed=True)
            except TimestampError:
                if synced:
                    raise
                self.sync_time()
                synced = True
            except RateLimited as exc:
                # Wait as Retry-After says (at least 1 s), within the call's overall bound and a
                # cap on attempts; a ban longer than what is left of the bound fails at once.
                delay = exc.retry_after if exc.retry_after is not None else 1.0
                rate_limited += 1
                if (waited + delay > self.retry.max_wait_seconds
                        or rate_limited >= self.retry.rate_limited_attempts):
                    raise
                self._sleep(delay)
                waited += delay
            except (ServerError, OutcomeUnknown) as exc:
                if not idempotent:
                    if isinstance(exc, OutcomeUnknown):
                        raise
                    raise OutcomeUnknown(str(exc)) from exc
                if attempt >= self.retry.idempotent_attempts:
                    raise
                self._sleep(self.retry.backoff_seconds * attempt)

    def _read_body(self, response: Any, deadline: float, operation: str) -> None:
        """The whole answer within the call's deadline: the socket timeout bounds each read, not
        a server that trickles its body a byte at a time."""
        from urllib3.exceptions import HTTPError as TransportError

        body = bytearray()
        try:
            while True:
                if time.monotonic() > deadline:
                    raise OutcomeUnknown(
                        f"{operation}: the answer from {self.base_url} did not arrive within"
                        f" {self.timeout_seconds:g}s; the outcome is unknown")
                chunk = response.raw.read1(65536, decode_content=True)
                if not chunk:
                    break
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise MalformedAnswer(f"{operation}: the answer is larger than any Binance sends")
        except TransportError as exc:
            raise OutcomeUnknown(
                f"{operation}: the answer from {self.base_url} broke off ({type(exc).__name__});"
                " the outcome is unknown") from None
        finally:
            response.close()
        response._content = bytes(body)  # what response.json() and .text read

    def signed_query(self, params: dict[str, Any]) -> str:
        """The query string as sent: parameters, recvWindow, timestamp, then the signature over
        exactly the bytes before it (percent-encoded once, form style, before signing)."""
        wire = dict(params)
        wire["recvWindow"] = self.recv_window_ms
        wire["timestamp"] = self._now_ms()
        payload = urlencode(wire)
        return f"{payload}&signature={self._signer.sign(payload.encode())}"

    def _send(
        self, method: str, path: str, params: dict[str, Any] | None, operation: str,
        *, signed: bool = False,
    ) -> Any:
        import requests

        url = self.base_url + path
        headers: dict[str, str] = {}
        if signed:
            assert params is not None
            # As Binance's official connector sends them: every parameter of every method, and the
            # signature last, in the query string; no body. The margin API refuses DELETE
            # parameters in a body (client maintainers' reports, January 2026).
            url = f"{url}?{self.signed_query(params)}"
            headers["X-MBX-APIKEY"] = self._api_key
        try:
            deadline = time.monotonic() + self.timeout_seconds
            response = self._session().request(
                method, url, headers=headers, timeout=self.timeout_seconds,
                allow_redirects=False, stream=True,
            )
            self._read_body(response, deadline, operation)
        # `from None` throughout: the message says what happened; urllib3's chain adds nothing a
        # person can act on, and a chained traceback is what fills a CI log.
        except requests.exceptions.ConnectTimeout:
            raise NotSent(f"{operation}: could not connect to {self.base_url} within"
                          f" {self.timeout_seconds:g}s (nothing was sent)") from None
        except requests.exceptions.Timeout:
            raise OutcomeUnknown(
                f"{operation}: no answer from {self.base_url} within {self.timeout_seconds:g}s;"
                " the outcome is unknown"
            ) from None
        except requests.exceptions.SSLError:
            raise NotSent(f"{operation}: TLS with {self.base_url} failed: its certificate was not"
                          " accepted (nothing was sent)") from None
        except requests.exceptions.ConnectionError as exc:
            if _never_connected(exc):
                raise NotSent(
                    f"{operation}: could not connect to {self.base_url}; check binance:baseUrl and"
                    " that the exchange is reachable from this machine (nothing was sent)"
                ) from None
            raise OutcomeUnknown(
                f"{operation}: the connection to {self.base_url} failed or was dropped"
                f" ({type(exc).__name__}); the outcome is unknown"
            ) from None
        code: Any = None
        msg = response.text[:200]
        try:
            data = response.json()
        except ValueError:
            data = None
            if response.status_code == 200:
                raise OutcomeUnknown(f"{operation}: the exchange answered 200 with a body that is"
                                     " not JSON; the outcome is unknown") from None
        if self._observer is not None:
            self._observer(method, path, dict(params or {}), response.status_code, data)
        if isinstance(data, dict) and isinstance(data.get("code"), (int, str)) and "msg" in data:
            code, msg = data.get("code"), str(data.get("msg"))
        if response.status_code == 200 and code in (None, 0, 200, "0", "200"):
            return data
        try:
            code = int(code) if code is not None else None
        except ValueError:
            code = None
        # Only Binance's own hosts may put their words into our messages: an endpoint the run's
        # environment let in (a sandbox, a relay) is heard by its code alone.
        err: BinanceAPIError = error_for(response.status_code, code,
                                         msg if self._speaks_for_binance else "", operation)
        err.retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        raise err
