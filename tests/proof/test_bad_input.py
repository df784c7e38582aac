"""Bad input fails at `pulumi preview`, names the field, and sends nothing to the exchange."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.harness import FULL_TABLES, PulumiProject, SandboxAccount, SandboxProcess


def public(private: Any) -> str:
    return str(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())


def private_pem(private: Any) -> str:
    return str(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode())


ED = ed25519.Ed25519PrivateKey.generate()
RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)

# (entry, the path the error must name, words of the reason)
BAD_KEYS: list[tuple[Any, str, str]] = [
    ({"name": "a b"}, "keys[0].name", "is not a name"),
    ({"name": "dup"}, "", ""),
    ({"name": "dup"}, "keys[2].name", "already the name of keys[1]"),
    ({"name": "n3", "apiName": ""}, "keys[3].apiName", "is required"),
    ({"name": "n4", "apiName": " padded"}, "keys[4].apiName", "leading or trailing"),
    ({"name": "n5", "apiName": "x" * 129}, "keys[5].apiName", "at most 128"),
    ({"name": "n6", "apiName": "tab\there"}, "keys[6].apiName", "control characters"),
    ({"name": "n7", "symbol": "BTC/USDT"}, "keys[7].symbol", "is not a symbol"),
    ({"name": "n8", "symbol": "B"}, "keys[8].symbol", "is not a symbol"),
    ({"name": "n9", "ipWhitelist": ["10.0.0.0/8"]}, "keys[9].ipWhitelist[0]", "is a range; list addresses"),
    ({"name": "n10", "ipWhitelist": ["trading.example.com"]}, "keys[10].ipWhitelist[0]", "host names"),
    ({"name": "n11", "ipWhitelist": ["10.0.0.256"]}, "keys[11].ipWhitelist[0]", "not an IPv4 or IPv6"),
    ({"name": "n12", "ipWhitelist": ["0.0.0.0"]}, "keys[12].ipWhitelist[0]", "without IP restriction"),
    ({"name": "n13", "ipWhitelist": [f"10.0.1.{i}" for i in range(31)]}, "keys[13].ipWhitelist",
     "at most 30"),
    ({"name": "n14", "ipWhitelist": "10.0.0.1"}, "keys[14].ipWhitelist", "must be a list"),
    ({"name": "n15", "ipWhitelist": [7]}, "keys[15].ipWhitelist[0]", "not a string"),
    ({"name": "n16", "ipWhitelist": ["fe80::1%eth0"]}, "keys[16].ipWhitelist[0]", "not an IPv4 or IPv6"),
    ({"name": "n17", "keyType": "DSA"}, "keys[17].keyType", "is not one of"),
    ({"name": "n18", "keyType": "RSA", "rsaBits": 1024}, "keys[18].rsaBits", "2048, 4096"),
    ({"name": "n19", "rsaBits": 2048}, "keys[19].rsaBits", "RSA keys only"),
    ({"name": "n20", "keyType": "RSA", "rsaBits": 2048.5}, "keys[20].rsaBits", "whole number"),
    ({"name": "n21", "permissionMode": "ADMIN"}, "keys[21].permissionMode", "is not one of"),
    ({"name": "n22", "keyType": "HMAC", "permissionMode": "READ"}, "keys[22].permissionMode",
     "ED25519 keys only"),
    ({"name": "n23", "keyType": "HMAC", "publicKey": public(ED)}, "keys[23].publicKey", "HMAC keys have no"),
    ({"name": "n24", "publicKey": public(RSA)}, "keys[24].publicKey", "RSA key but key_type is ED25519"),
    ({"name": "n25", "publicKey": "ssh-ed25519 AAAAC3Nza"}, "keys[25].publicKey", "BEGIN PUBLIC KEY"),
    ({"name": "n26", "keyType": "RSA", "publicKey": public(
        rsa.generate_private_key(public_exponent=65537, key_size=1024))}, "keys[26].publicKey", "1024 bits"),
    ({"name": "n27", "publicKey": public(ec.generate_private_key(ec.SECP256R1()))}, "keys[27].publicKey",
     "Ed25519 or RSA"),
    ({"name": "n28", "publicKey": "-----BEGIN PUBLIC KEY-----\nnot-base64\n-----END PUBLIC KEY-----"},
     "keys[28].publicKey", "not a readable PEM"),
    ({"name": "n29", "keepers": "v1"}, "keys[29].keepers", "map of strings"),
    ({"name": "n30", "rotateAfterDays": 0}, "keys[30].rotateAfterDays", "outside 1 to 3650"),
    ({"name": "n31", "rotateAfterDays": "weekly"}, "keys[31].rotateAfterDays", "not a number"),
    ({"name": "n32", "colour": "red"}, "keys[32].colour", "unknown field"),
    ({"name": "n33", "protect": "yes"}, "keys[33].protect", "true or false"),
    ({"name": "n34", "adoptApiKey": "not valid!"}, "keys[34].adoptApiKey", "apiKey of an existing"),
    ({"name": "n35", "adoptPrivateKey": private_pem(ED)}, "keys[35].adoptPrivateKey", "needs adopt_api_key"),
    ({"name": "n36", "keyType": "HMAC", "adoptApiKey": "A" * 64, "adoptPrivateKey": private_pem(ED)},
     "keys[36].adoptPrivateKey", "HMAC keys have no private key"),
    ({"name": "n37", "adoptApiKey": "A" * 64, "adoptSecretKey": "s" * 64}, "keys[37].adoptSecretKey",
     "applies to HMAC"),
    ({"name": "n38", "adoptApiKey": "A" * 64, "adoptPrivateKey": private_pem(RSA)},
     "keys[38].adoptPrivateKey", "RSA key but key_type is ED25519"),
    ({"name": "n39", "allowDuplicateName": "yes"}, "keys[39].allowDuplicateName", "true or false"),
    ("just-a-name", "keys[40]", "must be a map"),
]


def test_forty_bad_keys_fail_at_preview_each_named_and_nothing_is_sent(
    project: PulumiProject, clean_faults: SandboxProcess, report: Callable[..., None]
) -> None:
    sandbox = clean_faults
    project.set_keys([entry for entry, _, _ in BAD_KEYS])
    project.set_object("defaultIpWhitelist", ["10.0.0.1", "bad-default"])
    sandbox.reset_requests()
    preview = project.preview(check=False)
    assert preview.returncode != 0
    named = [(path, words) for _, path, words in BAD_KEYS if path]
    for path, words in named:
        line = next((ln for ln in preview.output.splitlines() if ln.strip().startswith(path + ":")), "")
        assert words in line, (path, words)
    assert 'defaultIpWhitelist[1]: "bad-default"' in preview.output
    assert sandbox.requests_log() == []
    report("bad input", where="stack config", cases=len(named) + 1, requests=0)


BAD_SETTINGS: list[tuple[str, dict[str, str | None], str]] = [
    ("no provider key", {"binance:apiKey": None}, "binance:apiKey is not set"),
    ("malformed provider key", {"binance:apiKey": "key with spaces"}, "binance:apiKey is malformed"),
    ("no secret or private key", {"binance:privateKey": None}, "neither binance:secretKey"),
    ("both secret and private key", {"binance:secretKey": "s" * 64}, "both binance:secretKey and"),
    ("private key not a PEM", {"binance:privateKey": "0123abcd"}, "binance:privateKey must be a PEM"),
    ("private key unreadable",
     {"binance:privateKey": "-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----"},
     "binance:privateKey is not a readable, unencrypted PEM private key"),
    ("private key of the wrong type",
     {"binance:privateKey": private_pem(ec.generate_private_key(ec.SECP256R1()))},
     "binance:privateKey must be an Ed25519 or RSA"),
    ("plain http to a remote host", {"binance:baseUrl": "http://api.binance.com"}, "plain http"),
    ("not an http URL", {"binance:baseUrl": "ftp://api.binance.com"}, "binance:baseUrl 'ftp://"),
    ("URL with credentials", {"binance:baseUrl": "https://user:pw@api.binance.com"}, "user info"),
    ("recvWindow too large", {"binance:recvWindow": "70000"}, "binance:recvWindow must be between"),
    ("timeout not a number", {"binance:requestTimeout": "soon"}, "binance:requestTimeout"),
]


# `make proof` runs every case on the engine; `make test` one of each way a setting arrives (a
# setting removed, a secret, a plaintext value), and every case's message in process
# (tests/unit/test_settings.py: test_bad_settings_name_the_setting and the private key tests).
ON_THE_ENGINE = BAD_SETTINGS if FULL_TABLES else [
    c for c in BAD_SETTINGS if c[0] in ("no secret or private key", "private key unreadable",
                                        "plain http to a remote host")]


@pytest.mark.parametrize(("case", "settings", "words"), ON_THE_ENGINE, ids=[c for c, _, _ in ON_THE_ENGINE])
def test_bad_provider_settings_fail_at_preview(
    project: PulumiProject, clean_faults: SandboxProcess, account: SandboxAccount,
    case: str, settings: dict[str, str | None], words: str, report: Callable[..., None]
) -> None:
    sandbox = clean_faults
    project.set_keys([{"name": "k"}])
    for key, value in settings.items():
        if value is None:
            project.run("config", "rm", key)
        elif key.endswith(("Key", "apiKey")):
            project.set_secret(key, value)
        else:
            project.set_config(key, value)
    sandbox.reset_requests()
    preview = project.preview(check=False)
    assert preview.returncode != 0
    assert words in preview.output
    assert account["privateKey"].splitlines()[1] not in preview.output
    assert sandbox.requests_log() == []
    report("bad input", where="provider settings", case=case, requests=0)
