"""The age file format, v1, with X25519 recipients (https://c2sp.org/age), on PyCA cryptography.

Seals a secret to the public keys (`age1…` recipients) of the systems allowed to read it; each
opens it with its own identity (`AGE-SECRET-KEY-1…`), with this module or with the `age` CLI.

Decryption works on the whole file in memory and returns only when every part of it verified:
no caller ever sees plaintext from a file that turns out truncated or modified. Every failure
is an `AgeError` whose message says what is wrong and never includes key material.
Passphrase (scrypt), post-quantum and plugin recipients are not supported; files carrying their
stanzas still open with an X25519 identity they are also addressed to.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import MarginSpecialKeysError

__all__ = ["AgeError", "Identity", "Recipient", "bech32_decode", "bech32_encode", "decrypt",
           "encrypt", "generate_identity", "parse_identities"]


class AgeError(MarginSpecialKeysError, ValueError):
    """Any reason a file, recipient or identity is refused; the message is one line for a person."""


# --- Bech32 (BIP-173), as age uses it: no length limit, one case throughout ----------------------

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: Sequence[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i, generator in enumerate(_GENERATOR):
            if top >> i & 1:
                checksum ^= generator
    return checksum


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _regroup(data: Sequence[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    accumulator, bits, out = 0, 0, []
    for value in data:
        accumulator = accumulator << from_bits | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append(accumulator >> bits & (1 << to_bits) - 1)
    if pad and bits:
        out.append(accumulator << (to_bits - bits) & (1 << to_bits) - 1)
    elif not pad and (bits >= from_bits or accumulator & (1 << bits) - 1):
        raise AgeError("bech32: the data part has invalid padding")
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    """`hrp` + "1" + the data and checksum; upper case if `hrp` is (as for identities)."""
    lower_hrp = hrp.lower()
    values = _regroup(data, 8, 5, pad=True)
    polymod = _polymod(_hrp_expand(lower_hrp) + values + [0] * 6) ^ 1
    checksum = [polymod >> 5 * (5 - i) & 31 for i in range(6)]
    text = lower_hrp + "1" + "".join(_CHARSET[v] for v in values + checksum)
    return text.upper() if hrp.isupper() else text


def bech32_decode(text: str) -> tuple[str, bytes]:
    """(hrp in the case it was written in, data). The checksum covers the lower-case form."""
    if any(not 33 <= ord(c) <= 126 for c in text):
        raise AgeError("bech32: a character is outside printable ASCII")
    if text.lower() != text and text.upper() != text:
        raise AgeError("bech32: it mixes upper and lower case")
    separator = text.rfind("1")
    if separator < 1:
        raise AgeError("bech32: no human-readable prefix before the separator '1'")
    if len(text) - separator - 1 < 6:
        raise AgeError("bech32: too short for its checksum")
    hrp, lower = text[:separator], text.lower()
    try:
        values = [_CHARSET.index(c) for c in lower[separator + 1:]]
    except ValueError:
        raise AgeError("bech32: a character is not in the bech32 alphabet") from None
    if _polymod(_hrp_expand(lower[:separator]) + values) != 1:
        raise AgeError("bech32: the checksum does not match (mistyped or cut short?)")
    return hrp, bytes(_regroup(values[:-6], 5, 8, pad=False))


# --- Recipients and identities -------------------------------------------------------------------

_RECIPIENT_HRP = "age"
_IDENTITY_HRP = "AGE-SECRET-KEY-"


@dataclass(frozen=True)
class Recipient:
    """An X25519 public key, written `age1…`: whom a file is sealed to."""

    public_key: bytes

    def __post_init__(self) -> None:
        if len(self.public_key) != 32:
            raise AgeError("invalid age recipient: an X25519 public key is 32 bytes")

    @classmethod
    def parse(cls, text: str) -> Recipient:
        # The input may be a secret pasted in the wrong place: no message repeats any of it.
        text = text.strip()
        if text.upper().startswith(_IDENTITY_HRP):
            raise AgeError("this is a secret identity (AGE-SECRET-KEY-1…), not a recipient: "
                           "give its public key (age1…), e.g. from `age-keygen -y`")
        try:
            hrp, key = bech32_decode(text)
        except AgeError as error:
            raise AgeError(f"invalid age recipient: {error}") from None
        if hrp != _RECIPIENT_HRP:
            raise AgeError("invalid age recipient: it should start with 'age1' (lower case)")
        if len(key) != 32:
            raise AgeError(f"invalid age recipient: it holds {len(key)} bytes, an X25519 key 32")
        return cls(key)

    def __str__(self) -> str:
        return bech32_encode(_RECIPIENT_HRP, self.public_key)

    def __repr__(self) -> str:
        return f"Recipient({str(self)!r})"


class Identity:
    """An X25519 private key, written `AGE-SECRET-KEY-1…`: opens files sealed to its recipient."""

    __slots__ = ("_key", "recipient")

    def __init__(self, key: X25519PrivateKey) -> None:
        self._key = key
        self.recipient = Recipient(key.public_key().public_bytes_raw())

    @classmethod
    def parse(cls, text: str) -> Identity:
        try:
            hrp, secret = bech32_decode(text.strip())
        except AgeError as error:
            raise AgeError(f"invalid age identity: {error}") from None
        if hrp != _IDENTITY_HRP:
            raise AgeError("invalid age identity: it should start with 'AGE-SECRET-KEY-1' (upper case)")
        if len(secret) != 32:
            raise AgeError(f"invalid age identity: it holds {len(secret)} bytes, an X25519 key 32")
        return cls(X25519PrivateKey.from_private_bytes(secret))

    def to_text(self) -> str:
        """The `AGE-SECRET-KEY-1…` form, for an identity file. A secret: never log it."""
        return bech32_encode(_IDENTITY_HRP, self._key.private_bytes_raw())

    def __repr__(self) -> str:  # never the secret, in a traceback or a log
        return f"Identity(recipient={self.recipient!r})"


def generate_identity() -> Identity:
    return Identity(X25519PrivateKey.generate())


def parse_identities(text: str) -> list[Identity]:
    """The identities of an identity file in age-keygen's format: one per line, `#` comments."""
    identities = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(Identity.parse(line))
        except AgeError as error:
            raise AgeError(f"identity file, line {number}: {error}") from None
    if not identities:
        raise AgeError("the identity file holds no AGE-SECRET-KEY-1… line")
    return identities


# --- The format ----------------------------------------------------------------------------------

_VERSION_PREFIX = b"age-encryption.org/"
_VERSION_LINE = _VERSION_PREFIX + b"v1"
_X25519_INFO = b"age-encryption.org/v1/X25519"
_CHUNK = 64 * 1024
_TAG = 16
_COLUMNS = 64
_ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
_ARMOR_END = b"-----END AGE ENCRYPTED FILE-----"
_BASE64_CHARS = re.compile(rb"[A-Za-z0-9+/]*")
_ZERO_NONCE = bytes(12)
_NOT_AGE = ("not an age file (it starts with neither 'age-encryption.org/v1' nor "
            "'-----BEGIN AGE ENCRYPTED FILE-----')")


def _hkdf(key: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


def _b64encode(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _b64decode(text: bytes, length: int | None, what: str) -> bytes:
    """Canonical unpadded base64 only, as the spec requires: one file, one encoding."""
    problem = f"invalid age header: {what} is not canonical unpadded base64"
    if not _BASE64_CHARS.fullmatch(text) or len(text) % 4 == 1:
        raise AgeError(problem)
    data = base64.b64decode(text + b"=" * (-len(text) % 4))
    if _b64encode(data) != text:
        raise AgeError(problem)
    if length is not None and len(data) != length:
        raise AgeError(f"invalid age header: {what} is {len(data)} bytes, not {length}")
    return data


def _chunk_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _wrap(file_key: bytes, recipient: Recipient) -> bytes:
    ephemeral = X25519PrivateKey.generate()
    share = ephemeral.public_key().public_bytes_raw()
    try:
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient.public_key))
    except ValueError:  # a low-order point: every sender would share the same all-zero secret
        raise AgeError("invalid age recipient: not a usable X25519 public key") from None
    wrap_key = _hkdf(shared, share + recipient.public_key, _X25519_INFO)
    body = ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)
    # 32 bytes are 43 columns of base64: a body of one line, shorter than 64, which ends it.
    return b"-> X25519 " + _b64encode(share) + b"\n" + _b64encode(body) + b"\n"


def encrypt(plaintext: bytes, recipients: Sequence[Recipient], *, armor: bool = True) -> bytes:
    """An age file that each of `recipients` can open; ASCII-armored unless `armor` is False."""
    if not recipients:
        raise AgeError("no recipients: a file nobody can open")
    file_key = os.urandom(16)
    header = _VERSION_LINE + b"\n" + b"".join(_wrap(file_key, r) for r in recipients) + b"---"
    mac = hmac.digest(_hkdf(file_key, b"", b"header"), header, "sha256")
    nonce = os.urandom(16)
    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    # Full 64 KiB chunks, then a shorter final one; a single empty chunk only for empty plaintext.
    starts = range(0, max(len(plaintext), 1), _CHUNK)
    chunks = [aead.encrypt(_chunk_nonce(counter, start + _CHUNK >= len(plaintext)),
                           plaintext[start:start + _CHUNK], None)
              for counter, start in enumerate(starts)]
    data = header + b" " + _b64encode(mac) + b"\n" + nonce + b"".join(chunks)
    return _armor(data) if armor else data


def _armor(data: bytes) -> bytes:
    text = base64.b64encode(data)
    lines = [text[i:i + _COLUMNS] for i in range(0, len(text), _COLUMNS)]
    return b"\n".join([_ARMOR_BEGIN, *lines, _ARMOR_END]) + b"\n"


def _dearmor(data: bytes) -> bytes:
    """Strict PEM (RFC 7468 §3) as the spec asks: whitespace around the block and CRLF line ends
    are the only freedoms, so an armored file, like a binary one, has a single encoding."""
    lines = [line.removesuffix(b"\r") for line in data.strip(b" \t\r\n").split(b"\n")]
    if lines[0] != _ARMOR_BEGIN:
        if b"-----" in data:
            raise AgeError("invalid ASCII armor: it must start with the line "
                           "'-----BEGIN AGE ENCRYPTED FILE-----' (only whitespace may come before it)")
        raise AgeError(_NOT_AGE)
    if lines[-1] != _ARMOR_END:
        raise AgeError("invalid ASCII armor: it does not end with '-----END AGE ENCRYPTED FILE-----' "
                       "(cut short, or text after it?)")
    body = lines[1:-1]
    for number, line in enumerate(body, start=1):
        if len(line) > _COLUMNS or not line or (len(line) < _COLUMNS and number < len(body)):
            raise AgeError(f"invalid ASCII armor: base64 line {number} is {len(line)} columns wide, "
                           f"not {_COLUMNS} (only the last may be shorter, and not empty)")
    text = b"".join(body)
    try:
        decoded = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise AgeError("invalid ASCII armor: the text between the markers is not base64") from None
    if base64.b64encode(decoded) != text:
        raise AgeError("invalid ASCII armor: the base64 is not in its canonical form")
    return decoded


@dataclass(frozen=True)
class _Stanza:
    args: list[bytes]
    body: bytes


@dataclass(frozen=True)
class _Header:
    stanzas: list[_Stanza]
    mac_input: bytes  # the header up to and including "---"
    mac: bytes
    end: int  # where the payload starts


def _parse_header(data: bytes) -> _Header:
    position = 0

    def next_line() -> bytes:
        nonlocal position
        end = data.find(b"\n", position)
        if end < 0:
            raise AgeError("the file is truncated (it ends inside the header)")
        line, position = data[position:end], end + 1
        return line

    if not data.startswith(_VERSION_PREFIX):
        raise AgeError(_NOT_AGE)
    version = next_line()
    if version == _VERSION_LINE + b"\r":
        raise AgeError("invalid age header: it has CRLF line ends (was the file converted as text? "
                       "age files are binary)")
    if version != _VERSION_LINE:
        raise AgeError("invalid age header: an unsupported version (this reads age-encryption.org/v1)")
    stanzas: list[_Stanza] = []
    while True:
        start = position
        line = next_line()
        if line.startswith(b"---"):
            if not stanzas:
                raise AgeError("invalid age header: it has no recipient stanza")
            if not line.startswith(b"--- "):
                raise AgeError("invalid age header: the MAC line is malformed")
            return _Header(stanzas, data[:start + 3], _b64decode(line[4:], 32, "the MAC"), position)
        if not line.startswith(b"-> "):
            raise AgeError("invalid age header: a line is neither a stanza nor the MAC")
        args = line[3:].split(b" ")
        if any(not arg or not all(0x21 <= c <= 0x7E for c in arg) for arg in args):
            raise AgeError("invalid age header: a stanza has an empty or non-printable argument")
        body = []
        while True:  # base64 lines of 64 columns, ended by a shorter one (maybe empty)
            body_line = next_line()
            if len(body_line) > _COLUMNS:
                raise AgeError("invalid age header: a stanza body line is longer than 64 columns")
            body.append(body_line)
            if len(body_line) < _COLUMNS:
                break
        stanzas.append(_Stanza(args, _b64decode(b"".join(body), None, "a stanza body")))


def _x25519_stanzas(stanzas: list[_Stanza]) -> list[tuple[bytes, bytes]]:
    """(ephemeral share, wrapped file key) of each X25519 stanza, all checked as the spec says."""
    if len(stanzas) > 1 and any(s.args[0] == b"scrypt" for s in stanzas):
        # A passphrase promises that only its holder wrote the file: it must stand alone.
        raise AgeError("invalid age header: a passphrase (scrypt) stanza must be the only stanza")
    found = []
    for stanza in stanzas:
        if stanza.args[0] != b"X25519":
            continue  # another recipient type's
        if len(stanza.args) != 2:
            raise AgeError("invalid age header: an X25519 stanza must have exactly one argument")
        share = _b64decode(stanza.args[1], 32, "an X25519 share")
        if len(stanza.body) != 32:  # checked before any decryption, against partitioning oracles
            raise AgeError("invalid age header: an X25519 stanza's body is not 32 bytes")
        found.append((share, stanza.body))
    return found


def _unwrap(identity: Identity, share: bytes, body: bytes) -> bytes | None:
    try:
        shared = identity._key.exchange(X25519PublicKey.from_public_bytes(share))
    except ValueError:  # an all-zero shared secret: the share is a low-order point
        raise AgeError("invalid age header: an X25519 share is a low-order point") from None
    wrap_key = _hkdf(shared, share + identity.recipient.public_key, _X25519_INFO)
    try:
        return ChaCha20Poly1305(wrap_key).decrypt(_ZERO_NONCE, body, None)
    except InvalidTag:
        return None  # addressed to someone else


def _open_chunk(aead: ChaCha20Poly1305, counter: int, chunk: bytes) -> tuple[bytes, bool]:
    """A chunk's plaintext, and whether it was sealed as the final chunk."""
    # Only a full chunk can be followed by others, and a full chunk can also be the final one.
    for last in (False, True) if len(chunk) == _CHUNK + _TAG else (True,):
        try:
            return aead.decrypt(_chunk_nonce(counter, last), chunk, None), last
        except InvalidTag:
            pass
    raise AgeError(f"the file was modified or truncated (payload chunk {counter} does not verify)")


def _open_payload(file_key: bytes, payload: bytes) -> bytes:
    if len(payload) < 16:
        raise AgeError("the file is truncated (it ends before the nonce that follows the header)")
    if len(payload) == 16:
        raise AgeError("the file is truncated (the payload is missing)")
    aead = ChaCha20Poly1305(_hkdf(file_key, payload[:16], b"payload"))
    plaintext = []
    position, counter = 16, 0
    while True:
        chunk = payload[position:position + _CHUNK + _TAG]
        position += len(chunk)
        opened, last = _open_chunk(aead, counter, chunk)
        plaintext.append(opened)
        if not last and position == len(payload):
            raise AgeError("the file is truncated (the payload's final chunk is missing)")
        if last and position != len(payload):
            raise AgeError("the file has trailing data after the end of its payload")
        if last and not opened and counter > 0:
            raise AgeError("invalid payload: an empty final chunk after other chunks")
        if last:
            return b"".join(plaintext)
        counter += 1


def _file_key(stanzas: list[_Stanza], identities: Sequence[Identity]) -> bytes:
    for share, body in _x25519_stanzas(stanzas):
        for identity in identities:
            if (file_key := _unwrap(identity, share, body)) is not None:
                return file_key
    raise AgeError("not addressed to this identity" if len(identities) == 1 else
                   f"not addressed to any of these {len(identities)} identities")


def decrypt(data: bytes, identities: Sequence[Identity]) -> bytes:
    """The plaintext of an age file (binary or ASCII-armored), once all of it verified."""
    if not identities:
        raise AgeError("no identities to decrypt with")
    if not data.startswith(_VERSION_PREFIX):
        data = _dearmor(data)
    header = _parse_header(data)
    file_key = _file_key(header.stanzas, identities)
    expected = hmac.digest(_hkdf(file_key, b"", b"header"), header.mac_input, "sha256")
    if not hmac.compare_digest(expected, header.mac):
        raise AgeError("the file was modified (header MAC does not verify)")
    return _open_payload(file_key, data[header.end:])
