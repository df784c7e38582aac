"""The provider's settings: credentials and endpoint, from stack config or the environment.

Read in `configure()`, in the provider process only, and never pickled. Stack config:
`binance:apiKey`, one of `binance:secretKey` (HMAC) or `binance:privateKey` (PEM, Ed25519 or
RSA), `binance:baseUrl`, `binance:recvWindow`, `binance:requestTimeout`,
`binance:otherApiKeys`. Environment fallbacks:
BINANCE_API_KEY, BINANCE_SECRET_KEY, BINANCE_PRIVATE_KEY, BINANCE_BASE_URL.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .binance.formats import API_KEY_PATTERN, HMAC_SECRET_PATTERN
from .errors import ConfigurationError

if TYPE_CHECKING:
    from .binance.client import BinanceClient
    from .binance.signing import Signer

DEFAULT_BASE_URL = "https://api.binance.com"


@dataclass(frozen=True)
class ProviderSettings:
    base_url: str
    api_key: str = field(repr=False)
    # Signs with binance:secretKey (HMAC) or binance:privateKey (Ed25519, RSA), parsed once here.
    signer: Signer = field(repr=False)
    recv_window_ms: int = 5000
    timeout_seconds: float = 10.0
    # API keys of the account that the special-key list cannot show (normal keys, keys of other
    # isolated pairs); counted against Binance's 30-key limit before a create-first replacement.
    other_api_keys: int = 1
    # Honour HTTPS_PROXY, REQUESTS_CA_BUNDLE and the like only when the run's environment says so
    # (BINANCE_USE_ENVIRONMENT_PROXY): otherwise the environment could silently redirect trust.
    use_environment: bool = False


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Binance's documented base endpoints for the REST API (Spot API docs, "General API Information").
BINANCE_API_HOSTS = ("api.binance.com", "api-gcp.binance.com", "api1.binance.com",
                     "api2.binance.com", "api3.binance.com", "api4.binance.com")
ALLOW_BASE_URL_ENV = "BINANCE_ALLOW_BASE_URL"
MAX_RECV_WINDOW_ENV = "BINANCE_MAX_RECV_WINDOW"
USE_PROXY_ENV = "BINANCE_USE_ENVIRONMENT_PROXY"
DEFAULT_RECV_WINDOW_MS = 5000  # Binance's default recvWindow


def allowed_base_urls(environ: Mapping[str, str]) -> set[str]:
    """The endpoints the run's environment vouches for (comma or space separated), as
    check_base_url compares them."""
    import re

    return {u.rstrip("/") for u in re.split(r"[,\s]+", environ.get(ALLOW_BASE_URL_ENV, "")) if u}


def is_binance_endpoint(url: str) -> bool:
    """One of Binance's documented API endpoints: https, a documented host, no port, no path."""
    parts = urlsplit(url.strip().rstrip("/"))
    return (parts.scheme == "https" and (parts.hostname or "").lower() in BINANCE_API_HOSTS
            and parts.port is None and parts.path == "")


def unusual_endpoint(url: str, environ: Mapping[str, str]) -> bool:
    """A base URL that is not Binance's, let in by the environment (a sandbox, a relay)."""
    return not is_binance_endpoint(url) and url.strip().rstrip("/") in allowed_base_urls(environ)


def check_base_url(url: str, environ: Mapping[str, str] | None = None) -> str:
    """Binance's documented endpoints only, unless the run's environment names another one
    exactly in BINANCE_ALLOW_BASE_URL: stack config (which a pull request can change) alone can
    never aim the provider key, its signatures and every new HMAC secret at a relay, a loopback
    service or a path of a host."""
    # Messages name the setting, never its value: a secret pasted into the wrong setting must
    # not reach a log through them.
    text = url.strip().rstrip("/")
    try:
        parts = urlsplit(text)
        hostname = parts.hostname
    except ValueError:
        hostname = None
    if hostname is None or parts.scheme not in ("https", "http"):
        raise ConfigurationError(f"binance:baseUrl is not an http(s) URL such as {DEFAULT_BASE_URL}")
    if "?" in text or "#" in text or parts.username is not None or parts.password is not None:
        raise ConfigurationError("binance:baseUrl must not carry a query, fragment or user info")
    if parts.scheme == "http" and not _is_loopback(hostname):
        raise ConfigurationError(
            "binance:baseUrl uses plain http to a host that is not loopback; use https (plain http"
            " is allowed only for a local sandbox on 127.0.0.1)")
    if is_binance_endpoint(text) or text in allowed_base_urls(environ or {}):
        return text
    raise ConfigurationError(
        f"binance:baseUrl is not one of Binance's documented API endpoints; another endpoint needs"
        f" {ALLOW_BASE_URL_ENV} naming it in the run's environment (stack config alone never can)."
        f" Binance's: https://{{{','.join(BINANCE_API_HOSTS)}}}, no port or path")


def _int_setting(name: str, raw: str | None, low: int, high: int, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(float(raw))
    except (ValueError, OverflowError):  # "inf" and "1e400" overflow
        raise ConfigurationError(f"{name} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be between {low} and {high}, got {value}")
    return value


def read_settings(
    config_get: Callable[[str], str | None], environ: Mapping[str, str]
) -> ProviderSettings:
    """Settings from `config_get("binance:...")`, falling back to the environment."""

    def get(key: str, env: str | None = None) -> str | None:
        value = config_get(f"binance:{key}")
        if (value is None or value == "") and env is not None:
            value = environ.get(env)
        return value if value not in ("", None) else None

    api_key = get("apiKey", "BINANCE_API_KEY")
    if api_key is None:
        raise ConfigurationError(
            "binance:apiKey is not set: run `pulumi config set --secret binance:apiKey` and paste"
            " the key at its prompt (never on the command line, where shell history keeps it), or"
            " set BINANCE_API_KEY, with a key that has \"Enable Spot & Margin Trading\""
        )
    if not API_KEY_PATTERN.match(api_key.strip()):
        raise ConfigurationError("binance:apiKey is malformed: Binance API keys are letters and digits")
    secret_key = get("secretKey", "BINANCE_SECRET_KEY")
    private_key = get("privateKey", "BINANCE_PRIVATE_KEY")
    if secret_key is None and private_key is None:
        raise ConfigurationError(
            "neither binance:secretKey (HMAC) nor binance:privateKey (Ed25519 or RSA PEM) is set:"
            " run `pulumi config set --secret binance:privateKey < key.pem`"
        )
    if secret_key is not None and private_key is not None:
        raise ConfigurationError(
            "both binance:secretKey and binance:privateKey are set; keep the one that belongs"
            " to binance:apiKey"
        )
    if secret_key is not None and not HMAC_SECRET_PATTERN.match(secret_key.strip()):
        raise ConfigurationError("binance:secretKey is malformed: HMAC secrets are letters and digits")
    from .binance.signing import HmacSigner, PrivateKeySigner

    signer: Signer
    if private_key is not None:
        if "PRIVATE KEY-----" not in private_key:
            hint = ("; it looks like an HMAC secret: set it as binance:secretKey instead"
                    if HMAC_SECRET_PATTERN.match(private_key.strip()) else "")
            raise ConfigurationError(
                "binance:privateKey must be a PEM private key (a BEGIN PRIVATE KEY block)" + hint)
        try:  # parsed now, so a bad key fails at preview rather than at the first request
            signer = PrivateKeySigner(private_key)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
    else:
        assert secret_key is not None
        signer = HmacSigner(secret_key.strip())
    base_url = check_base_url(get("baseUrl", "BINANCE_BASE_URL") or DEFAULT_BASE_URL, environ)
    if (get("useEnvironmentProxy") or "false").strip().lower() != "false":
        # Which proxy, CA bundle and .netrc requests trust is the run's to say, not a stack file's
        # (a pull request's): the same rule as the endpoint.
        raise ConfigurationError(
            f"binance:useEnvironmentProxy is not read from stack config: set {USE_PROXY_ENV}=true"
            " in the run's environment to honour HTTPS_PROXY, REQUESTS_CA_BUNDLE and the like")
    use_environment = environ.get(USE_PROXY_ENV, "").strip().lower() == "true"
    cap = _int_setting(MAX_RECV_WINDOW_ENV, environ.get(MAX_RECV_WINDOW_ENV), 1, 60000,
                       DEFAULT_RECV_WINDOW_MS)
    recv_window = _int_setting("binance:recvWindow", get("recvWindow"), 1, 60000, DEFAULT_RECV_WINDOW_MS)
    if recv_window > cap:
        # A longer window keeps every signature valid for longer; a pull request must not be able
        # to stretch it by editing the stack's config.
        raise ConfigurationError(
            f"binance:recvWindow {recv_window} is above {cap} ms, the most this run allows;"
            f" {MAX_RECV_WINDOW_ENV} in the run's environment may allow up to 60000")
    timeout = _int_setting("binance:requestTimeout", get("requestTimeout"), 1, 300, 10)
    other_keys = _int_setting("binance:otherApiKeys", get("otherApiKeys"), 0, 29, 1)
    return ProviderSettings(
        base_url=base_url,
        api_key=api_key.strip(),
        signer=signer,
        recv_window_ms=recv_window,
        timeout_seconds=float(timeout),
        other_api_keys=other_keys,
        use_environment=use_environment,
    )


def provider_fingerprint(config_get: Callable[[str], str | None],
                         environ: Mapping[str, str]) -> str | None:
    """A short, one-way fingerprint of which account and endpoint the provider signs for: the
    host, the provider's apiKey and its key type (never the secret itself). It is an input of
    every key, so a change of provider settings shows in every preview instead of "no changes"."""
    import hashlib

    def get(key: str, env: str) -> str:
        value = config_get(f"binance:{key}")
        return (value if value not in (None, "") else environ.get(env, "")) or ""

    api_key = get("apiKey", "BINANCE_API_KEY").strip()
    if not api_key:
        return None
    host = urlsplit((get("baseUrl", "BINANCE_BASE_URL") or DEFAULT_BASE_URL).strip()).netloc.lower()
    kind = "hmac" if get("secretKey", "BINANCE_SECRET_KEY") else "private-key"
    return hashlib.sha256(f"{host}|{api_key}|{kind}".encode()).hexdigest()[:16]


def make_client(settings: ProviderSettings,
                observer: Callable[[str, str, dict[str, Any], int, Any], None] | None = None,
                ) -> BinanceClient:
    """A BinanceClient for these settings; requests loads only now."""
    from .binance.client import BinanceClient

    return BinanceClient(
        settings.base_url,
        settings.api_key,
        settings.signer,
        recv_window_ms=settings.recv_window_ms,
        timeout_seconds=settings.timeout_seconds,
        observer=observer,
        trust_environment=settings.use_environment,
    )
