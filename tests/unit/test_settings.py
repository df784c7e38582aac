"""Provider settings: credentials and endpoint from stack config or environment."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from margin_special_keys.errors import ConfigurationError
from margin_special_keys.settings import make_client, read_settings

API_KEY = "A" * 64
SECRET = "s" * 64
PRIVATE = ed25519.Ed25519PrivateKey.generate().private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def settings(config: dict[str, str], env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return read_settings(config.get, env or {})


def test_reads_config_and_defaults() -> None:
    s = settings({"binance:apiKey": API_KEY, "binance:secretKey": SECRET})
    assert (s.base_url, s.recv_window_ms, s.timeout_seconds) == ("https://api.binance.com", 5000, 10.0)


def test_environment_fallbacks() -> None:
    s = settings({}, {"BINANCE_API_KEY": API_KEY, "BINANCE_PRIVATE_KEY": PRIVATE,
                      "BINANCE_BASE_URL": "http://127.0.0.1:9",
                      "BINANCE_ALLOW_BASE_URL": "http://127.0.0.1:9"})
    assert s.signer.name == "Ed25519" and s.base_url == "http://127.0.0.1:9"


def test_config_wins_over_environment() -> None:
    s = settings({"binance:apiKey": API_KEY, "binance:secretKey": SECRET},
                 {"BINANCE_API_KEY": "B" * 64})
    assert s.api_key == API_KEY


@pytest.mark.parametrize(("config", "words"), [
    ({}, "binance:apiKey is not set"),
    ({"binance:apiKey": "has space"}, "binance:apiKey is malformed"),
    ({"binance:apiKey": API_KEY}, "neither binance:secretKey"),
    ({"binance:apiKey": API_KEY, "binance:secretKey": SECRET, "binance:privateKey": PRIVATE}, "both"),
    ({"binance:apiKey": API_KEY, "binance:secretKey": "short"}, "binance:secretKey is malformed"),
    ({"binance:apiKey": API_KEY, "binance:privateKey": "not a pem"}, "binance:privateKey must be a PEM"),
    ({"binance:apiKey": API_KEY, "binance:secretKey": SECRET, "binance:baseUrl": "http://api.binance.com"},
     "plain http"),
    ({"binance:apiKey": API_KEY, "binance:secretKey": SECRET, "binance:baseUrl": "ftp://x"}, "not an http"),
    ({"binance:apiKey": API_KEY, "binance:secretKey": SECRET, "binance:baseUrl": "https://u:p@h"},
     "user info"),
    ({"binance:apiKey": API_KEY, "binance:secretKey": SECRET, "binance:recvWindow": "60001"},
     "binance:recvWindow must be between"),
    ({"binance:apiKey": API_KEY, "binance:secretKey": SECRET, "binance:requestTimeout": "soon"},
     "binance:requestTimeout"),
])
def test_bad_settings_name_the_setting(config: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        settings(config)
    assert words in str(raised.value)
    for secret in (SECRET, PRIVATE, "not a pem"):
        assert secret not in str(raised.value)


def test_a_loopback_sandbox_is_allowed_only_when_the_run_names_it() -> None:
    for url in ("http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:2"):
        config = {"binance:apiKey": API_KEY, "binance:secretKey": SECRET, "binance:baseUrl": url}
        with pytest.raises(ConfigurationError, match="stack config alone never can"):
            settings(config)
        assert settings(config, {"BINANCE_ALLOW_BASE_URL": f"https://x.example, {url}/"}).base_url == url


def test_unreadable_or_wrong_private_key_fails_without_quoting_it() -> None:
    broken = "-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----\n"
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    for pem in (broken, ec_pem):
        with pytest.raises(ConfigurationError) as raised:
            settings({"binance:apiKey": API_KEY, "binance:privateKey": pem})
        assert "binance:privateKey" in str(raised.value) and "QUJD" not in str(raised.value)


def test_settings_and_client_reprs_hide_credentials() -> None:
    s = settings({"binance:apiKey": API_KEY, "binance:privateKey": PRIVATE})
    client = make_client(s)
    for text in (repr(s), repr(client), repr(client._signer)):
        assert API_KEY not in text and "PRIVATE" not in text


def test_an_hmac_secret_given_as_private_key_gets_the_hint_to_use_secret_key() -> None:
    from margin_special_keys.errors import ConfigurationError
    from margin_special_keys.settings import read_settings

    config = {"binance:apiKey": "K" * 64, "binance:privateKey": "s" * 64}
    with pytest.raises(ConfigurationError, match="looks like an HMAC secret: set it as binance:secretKey"):
        read_settings(config.get, {})


@pytest.mark.parametrize("url", ["https://api.binance.com.evil.example", "https://evil.example",
                                 "https://binance.com", "https://api.binance.co",
                                 "https://api.binance.com/v1/secret/data/prod",
                                 "https://api.binance.com:8443", "http://127.0.0.1:8200/v1/secret",
                                 "https://10.0.0.5", "https://192.168.1.20"])
def test_a_base_url_that_is_not_binance_is_refused_unless_the_environment_names_it(url: str) -> None:
    from margin_special_keys.errors import ConfigurationError
    from margin_special_keys.settings import read_settings, unusual_endpoint

    config = {"binance:apiKey": "K" * 64, "binance:secretKey": "s" * 64, "binance:baseUrl": url}
    with pytest.raises(ConfigurationError, match="not one of Binance's documented API endpoints"):
        read_settings(config.get, {})
    # Stack config cannot name the override: only the run's environment can.
    config["binance:allowBaseUrl"] = url
    with pytest.raises(ConfigurationError):
        read_settings(config.get, {})
    settings = read_settings(config.get, {"BINANCE_ALLOW_BASE_URL": url})
    assert settings.base_url == url and unusual_endpoint(url, {"BINANCE_ALLOW_BASE_URL": url})


def test_binance_hosts_need_no_override() -> None:
    from margin_special_keys.settings import read_settings, unusual_endpoint

    for url in ("https://api.binance.com", "https://api3.binance.com/", "https://api-gcp.binance.com"):
        config = {"binance:apiKey": "K" * 64, "binance:secretKey": "s" * 64, "binance:baseUrl": url}
        assert read_settings(config.get, {}).base_url == url.rstrip("/")
        assert not unusual_endpoint(url, {"BINANCE_ALLOW_BASE_URL": url})


def test_a_stacks_recv_window_is_capped_at_binances_default_unless_the_run_allows_more() -> None:
    config = {"binance:apiKey": API_KEY, "binance:secretKey": SECRET, "binance:recvWindow": "60000"}
    with pytest.raises(ConfigurationError, match="above 5000 ms.*BINANCE_MAX_RECV_WINDOW"):
        settings(config)
    assert settings({**config, "binance:recvWindow": "5000"}).recv_window_ms == 5000
    assert settings(config, {"BINANCE_MAX_RECV_WINDOW": "60000"}).recv_window_ms == 60000
    with pytest.raises(ConfigurationError, match="above 10000 ms"):
        settings(config, {"BINANCE_MAX_RECV_WINDOW": "10000"})


def test_a_missing_api_key_is_never_told_to_go_on_the_command_line() -> None:
    with pytest.raises(ConfigurationError) as refused:
        settings({"binance:secretKey": SECRET})
    assert "binance:apiKey <" not in str(refused.value) and "prompt" in str(refused.value)


def test_the_environment_redirects_no_trust_unless_the_run_says_so(monkeypatch: Any) -> None:
    from margin_special_keys.settings import make_client, read_settings

    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    config = {"binance:apiKey": "K" * 64, "binance:secretKey": "s" * 64}
    assert make_client(read_settings(config.get, {}))._session().trust_env is False
    assert make_client(read_settings(config.get, {"BINANCE_USE_ENVIRONMENT_PROXY": "true"})
                       )._session().trust_env is True
    # A stack file (a pull request) cannot switch it on.
    with pytest.raises(ConfigurationError, match="BINANCE_USE_ENVIRONMENT_PROXY"):
        read_settings({**config, "binance:useEnvironmentProxy": "true"}.get, {})
    assert read_settings({**config, "binance:useEnvironmentProxy": "false"}.get, {}).use_environment is False


def test_a_settings_error_never_echoes_the_value() -> None:
    secret = ("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAAAAAAAAAAAAAAAAAAA\n"
              "-----END PRIVATE KEY-----")
    base = {"binance:apiKey": API_KEY, "binance:secretKey": SECRET}
    for name in ("baseUrl", "recvWindow", "requestTimeout", "otherApiKeys"):
        with pytest.raises(ConfigurationError) as refused:
            settings({**base, f"binance:{name}": secret})
        assert "PRIVATE" not in str(refused.value) and "MC4C" not in str(refused.value), name
    for odd in ("inf", "1e400", "nan"):
        with pytest.raises(ConfigurationError, match="binance:recvWindow is not a whole number"):
            settings({**base, "binance:recvWindow": odd})
    for url in ("https://[api.binance.com]", "https://api.binance.com?", "https://api.binance.com#"):
        with pytest.raises(ConfigurationError):
            settings({**base, "binance:baseUrl": url})


def test_the_provider_fingerprint_changes_with_host_key_or_key_type_only() -> None:
    from margin_special_keys.settings import provider_fingerprint

    base = {"binance:apiKey": "K" * 64, "binance:secretKey": "s" * 64}
    first = provider_fingerprint(base.get, {})
    assert first == provider_fingerprint({**base, "binance:secretKey": "t" * 64}.get, {})
    assert first != provider_fingerprint({**base, "binance:apiKey": "L" * 64}.get, {})
    assert first != provider_fingerprint({**base, "binance:baseUrl": "http://127.0.0.1:1"}.get, {})
    assert first != provider_fingerprint({"binance:apiKey": "K" * 64, "binance:privateKey": "x"}.get, {})
    assert first is not None and "K" * 8 not in first
