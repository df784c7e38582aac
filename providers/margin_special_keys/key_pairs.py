"""Keypairs for special keys: generated locally, only the public half ever leaves the process.

Explicit key objects and algorithms, after PyCA cryptography: a key's type is read from the
key object that parsing returns, never guessed from its length.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from .binance.formats import RSA_BITS


@dataclass(frozen=True)
class GeneratedKeypair:
    public_key_pem: str
    private_key_pem: str

    def __repr__(self) -> str:  # never show the private half in a traceback or log
        return "GeneratedKeypair(public_key_pem=..., private_key_pem=<secret>)"


@dataclass(frozen=True)
class PublicKeyInfo:
    key_type: str  # ED25519 or RSA
    bits: int | None  # RSA only
    pem: str  # canonical PKCS#8 SubjectPublicKeyInfo PEM


@dataclass(frozen=True)
class PrivateKeyInfo:
    key_type: str  # ED25519 or RSA
    bits: int | None  # RSA only
    public_pem: str  # its public half, canonical PKCS#8 SubjectPublicKeyInfo PEM
    private_pem: str = field(repr=False)  # canonical PKCS#8


def _private_pem(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _public_pem(key: ed25519.Ed25519PublicKey | rsa.RSAPublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def generate_ed25519() -> GeneratedKeypair:
    private = ed25519.Ed25519PrivateKey.generate()
    return GeneratedKeypair(_public_pem(private.public_key()), _private_pem(private))


def generate_rsa(bits: int) -> GeneratedKeypair:
    if bits not in RSA_BITS:
        raise ValueError(f"RSA keys must be {' or '.join(map(str, RSA_BITS))} bits")
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return GeneratedKeypair(_public_pem(private.public_key()), _private_pem(private))


def read_public_key(pem: str) -> PublicKeyInfo:
    """Parse a PKCS#8 public key PEM; ValueError says what is wrong with it."""
    if "-----BEGIN PUBLIC KEY-----" not in pem:
        raise ValueError("must be a PKCS#8 PEM that starts with -----BEGIN PUBLIC KEY-----")
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"is not a readable PEM public key ({exc.__class__.__name__})") from None
    if isinstance(key, ed25519.Ed25519PublicKey):
        return PublicKeyInfo("ED25519", None, _public_pem(key))
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size not in RSA_BITS:
            raise ValueError(f"is an RSA key of {key.key_size} bits; Binance takes 2048 or 4096")
        return PublicKeyInfo("RSA", key.key_size, _public_pem(key))
    raise ValueError(f"is a {type(key).__name__}; Binance takes Ed25519 or RSA public keys")


def read_private_key(pem: str) -> PrivateKeyInfo:
    """An unencrypted PKCS#8 private key PEM and its public half; ValueError never quotes the key."""
    from .binance.signing import load_private_key

    key = load_private_key(pem)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return PrivateKeyInfo("ED25519", None, _public_pem(key.public_key()), _private_pem(key))
    if key.key_size not in RSA_BITS:
        raise ValueError(f"is an RSA key of {key.key_size} bits; Binance takes 2048 or 4096")
    return PrivateKeyInfo("RSA", key.key_size, _public_pem(key.public_key()), _private_pem(key))
