"""Binance's margin special-key endpoints, one method per wire operation.

Every call is signed, has a timeout, and follows Binance's rules for trouble:
- -1021 (clock off): sync with GET /api/v3/time once and try again;
- 429 / 418: wait as Retry-After says, within a bound, and try again (the request was refused);
- 5xx, timeouts, dropped connections: the outcome is unknown. Reads, IP edits and deletes are
  retried (doing them twice does no harm); a create raises `OutcomeUnknown` so the caller can
  reconcile against the key list before anything is retried.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from .errors import (
    BinanceAPIError,
    KeyNotFound,
    OutcomeUnknown,
    RateLimited,
    ServerError,
    TimestampError,
    error_for,
)
from .signing import Signer

NO_IP = "0.0.0.0"
USER_AGENT = "margin-special-keys/0.1"


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


@dataclass(frozen=True)
class CreatedKey:
    api_key: str
    secret_key: str | None
    key_type: str

    def __repr__(self) -> str:
        return f"CreatedKey(api_key={self.api_key!r}, key_type={self.key_type!r}, secret_key=<secret>)"


@dataclass(frozen=True)
class SpecialKey:
    api_key: str
    api_name: str
    ips: tuple[str, ...]
    key_type: str
    permission_mode: str | None

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> SpecialKey:
        raw_ip = str(data.get("ip") or NO_IP)
        ips = () if raw_ip == NO_IP else tuple(p.strip() for p in raw_ip.split(",") if p.strip())
        return cls(
            api_key=str(data["apiKey"]),
            api_name=str(data.get("apiName", "")),
            ips=ips,
            key_type=str(data.get("type", "")),
            permission_mode=data.get("permissionMode"),
        )


@dataclass(frozen=True)
class RetryPolicy:
    max_wait_seconds: float = 60.0  # total Retry-After waiting a call accepts
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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._signer = signer
        self.recv_window_ms = recv_window_ms
        self.timeout_seconds = timeout_seconds
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._offset_ms = 0
        self._lock = threading.Lock()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"BinanceClient({self.base_url!r}, api_key=<hidden>)"

    # --- the wire operations ---

    def server_time(self) -> int:
        data = self._send("GET", "/api/v3/time", None, "read server time")
        return int(data["serverTime"])

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
        data = self._signed("POST", "/sapi/v1/margin/apiKey", params, "create special key",
                            idempotent=False)
        return CreatedKey(str(data["apiKey"]), data.get("secretKey"), str(data.get("type", "")))

    def query_special_key(self, api_key: str, symbol: str | None) -> SpecialKey:
        params = self._scoped({"apiKey": api_key}, symbol)
        data = self._signed("GET", "/sapi/v1/margin/apiKey", params, "query special key")
        return SpecialKey.from_wire(data)

    def list_special_keys(self, symbol: str | None) -> list[SpecialKey]:
        data = self._signed("GET", "/sapi/v1/margin/api-key-list", self._scoped({}, symbol),
                            "list special keys")
        return [SpecialKey.from_wire(item) for item in data]

    def isolated_symbols(self) -> list[str]:
        """The account's isolated margin pairs (Query Isolated Margin Account Info)."""
        data = self._signed("GET", "/sapi/v1/margin/isolated/account", {}, "list isolated margin pairs")
        return [str(asset["symbol"]) for asset in data.get("assets", [])]

    def edit_ip(self, api_key: str, symbol: str | None, ips: list[str]) -> None:
        params = self._scoped({"apiKey": api_key, "ip": ",".join(ips) if ips else NO_IP}, symbol)
        self._signed("PUT", "/sapi/v1/margin/apiKey/ip", params, "edit special key IPs")

    def delete_special_key(self, api_key: str, symbol: str | None) -> bool:
        """Delete by apiKey, never by name. False when the key was already gone."""
        params = self._scoped({"apiKey": api_key}, symbol)
        try:
            self._signed("DELETE", "/sapi/v1/margin/apiKey", params, "delete special key")
        except KeyNotFound:
            return False
        return True

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
                delay = float(getattr(exc, "retry_after", None) or 1.0)
                if waited + delay > self.retry.max_wait_seconds:
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

    def _send(
        self, method: str, path: str, params: dict[str, Any] | None, operation: str,
        *, signed: bool = False,
    ) -> Any:
        import requests

        url = self.base_url + path
        headers: dict[str, str] = {}
        body: str | None = None
        if signed:
            assert params is not None
            wire = dict(params)
            wire["recvWindow"] = self.recv_window_ms
            wire["timestamp"] = self._now_ms()
            payload = urlencode(wire)
            query = f"{payload}&signature={self._signer.sign(payload.encode())}"
            headers["X-MBX-APIKEY"] = self._api_key
            if method == "GET":
                url = f"{url}?{query}"
            else:
                body = query
                headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            response = self._session().request(
                method, url, data=body, headers=headers, timeout=self.timeout_seconds,
                allow_redirects=False,
            )
        except requests.exceptions.ConnectTimeout as exc:
            raise OutcomeUnknown(f"{operation}: could not connect to {self.base_url} in time") from exc
        except requests.exceptions.Timeout as exc:
            raise OutcomeUnknown(
                f"{operation}: no answer from {self.base_url} within {self.timeout_seconds}s;"
                " the outcome is unknown"
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            if _never_connected(exc):
                raise OutcomeUnknown(
                    f"{operation}: could not connect to {self.base_url}; check binance:baseUrl and"
                    " that the exchange is reachable from this machine (nothing was sent)"
                ) from exc
            raise OutcomeUnknown(
                f"{operation}: the connection to {self.base_url} failed or was dropped"
                f" ({type(exc).__name__}); the outcome is unknown"
            ) from exc
        if response.status_code == 200:
            return response.json()
        code, msg = None, response.text[:200]
        try:
            data = response.json()
            code, msg = data.get("code"), str(data.get("msg", msg))
        except ValueError:
            pass
        err: BinanceAPIError = error_for(response.status_code, code, msg, operation)
        retry_after = response.headers.get("Retry-After")
        if retry_after is not None:
            try:
                err.retry_after = float(retry_after)  # type: ignore[attr-defined]
            except ValueError:
                pass
        raise err
