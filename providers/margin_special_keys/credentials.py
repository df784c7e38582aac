"""Opens a trading key's sealed credentials: the reader a trading system runs.

    python -m margin_special_keys.credentials keygen [-o FILE]
    python -m margin_special_keys.credentials open FILE --identity KEYFILE [--field NAME]

`keygen` writes a new identity in age-keygen's format and prints its public key (`age1…`) on
stderr: the recipient to seal this system's credentials to. `open` decrypts an age file (binary or
ASCII-armored, `-` for stdin) with the identities in KEYFILE, checks that it holds a JSON object
and prints it, or only the value of one top-level field (a string as it is, for `$(…)`).
Files sealed with the `age` CLI open here, and files sealed here open with `age -d`.

Any failure is one line on stderr and exit status 1. This module imports only the standard library
until a command runs (no Pulumi, ever), so a trading host needs nothing else but `cryptography`.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import MarginSpecialKeysError


class _Refused(MarginSpecialKeysError):
    """A failure whose message tells the person at the terminal what to do."""


def _read_identities_text(path: str) -> str:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as error:
        raise _Refused(f"cannot read identity file {path}: {error.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        # As ssh does with private keys: a secret others can read is no longer this host's alone.
        mode = stat.S_IMODE(os.fstat(file.fileno()).st_mode)
        if mode & 0o077:
            raise _Refused(f"identity file {path} is open to group or others (mode {mode:04o}): "
                           f"run chmod 600 {path}")
        try:
            return file.read().decode("utf-8")
        except UnicodeDecodeError:
            raise _Refused(f"identity file {path} is not text in age-keygen's format") from None


def _read_sealed(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise _Refused(f"cannot read {path}: {error.strerror}") from None


def _open(args: argparse.Namespace) -> None:
    from .age import decrypt, parse_identities

    identities = parse_identities(_read_identities_text(args.identity))
    plaintext = decrypt(_read_sealed(args.file), identities)
    try:
        credentials: Any = json.loads(plaintext)
    except ValueError:
        raise _Refused("the decrypted content is not JSON") from None
    if not isinstance(credentials, dict):
        raise _Refused("the decrypted content is JSON, but not an object")
    if args.field is None:
        output = json.dumps(credentials, indent=2)
    elif args.field in credentials:
        value = credentials[args.field]
        output = value if isinstance(value, str) else json.dumps(value)
    else:
        raise _Refused(f"no field {args.field!r} in the credentials; "
                       f"their fields: {', '.join(sorted(credentials)) or 'none'}")
    sys.stdout.write(output + "\n")


def _keygen(args: argparse.Namespace) -> None:
    from .age import generate_identity

    identity = generate_identity()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    text = f"# created: {created}\n# public key: {identity.recipient}\n{identity.to_text()}\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        try:  # never over an existing key, and readable by its owner alone from the first byte
            fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise _Refused(f"{args.output} already exists: not overwriting it") from None
        except OSError as error:
            raise _Refused(f"cannot create {args.output}: {error.strerror}") from None
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchmod(fd, 0o600)  # 0600 whatever the umask
            file.write(text)
    print(f"Public key: {identity.recipient}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m margin_special_keys.credentials",
        description="Open the credentials of a special key, sealed to this system's age identity.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    keygen = commands.add_parser("keygen", help="write a new identity; its public key goes to stderr")
    keygen.add_argument("-o", "--output", metavar="FILE", help="a new file, mode 0600 (default: stdout)")
    keygen.set_defaults(run=_keygen)
    open_ = commands.add_parser("open", help="decrypt sealed credentials and print them as JSON")
    open_.add_argument("file", metavar="FILE", help="the sealed file, binary or armored; - for stdin")
    open_.add_argument("--identity", "-i", metavar="KEYFILE", required=True,
                       help="identity file in age-keygen's format, mode 0600")
    open_.add_argument("--field", metavar="NAME", help="print only this top-level field's value")
    open_.set_defaults(run=_open)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except (_Refused, ValueError, OSError) as error:  # ValueError: margin_special_keys.age.AgeError
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
