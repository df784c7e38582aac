"""`python -m margin_special_keys.credentials`, as a trading system's operator runs it: keygen,
then open what was sealed to that key, by this package or by the age CLI."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from margin_special_keys.age import Recipient, encrypt, generate_identity

AGE = "/usr/bin/age"
AGE_KEYGEN = "/usr/bin/age-keygen"
API_KEY = "k" * 64
PEM = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI…\n-----END PRIVATE KEY-----\n"
CREDENTIALS = {"apiKey": API_KEY, "privateKeyPem": PEM, "ipWhitelist": ["1.2.3.4"]}


def cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    run = subprocess.run([sys.executable, "-m", "margin_special_keys.credentials", *args], input=stdin,
                         capture_output=True)
    return subprocess.CompletedProcess(run.args, run.returncode, run.stdout.decode(), run.stderr.decode())


def refused(run: subprocess.CompletedProcess[str], message: str) -> None:
    """Exit 1, nothing on stdout, and one line on stderr: the message, no traceback."""
    assert (run.returncode, run.stdout) == (1, ""), run
    assert run.stderr.count("\n") == 1 and re.fullmatch(f"error: {message}\n", run.stderr), run.stderr


@pytest.fixture(scope="module")
def age_cli() -> None:
    missing = [tool for tool in (AGE, AGE_KEYGEN) if not os.access(tool, os.X_OK)]
    if missing:
        pytest.fail(f"{' and '.join(missing)} missing: these tests need the age CLI (apt-get install age)")


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Recipient]:
    """An identity file written by our keygen, and the recipient it printed."""
    path = tmp_path_factory.mktemp("keys") / "trading-host.key"
    run = cli("keygen", "-o", str(path))
    assert (run.returncode, run.stdout) == (0, ""), run
    printed = re.fullmatch(r"Public key: (age1\S+)\n", run.stderr)
    assert printed, run.stderr
    return path, Recipient.parse(printed[1])


def test_keygen_writes_age_keygens_format_for_the_owner_alone(key: tuple[Path, Recipient]) -> None:
    path, recipient = key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    created, public, secret = path.read_text().splitlines()
    assert re.fullmatch(r"# created: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", created)
    assert public == f"# public key: {recipient}"
    assert re.fullmatch(r"AGE-SECRET-KEY-1[0-9A-Z]{58}", secret)


def test_keygen_never_overwrites(key: tuple[Path, Recipient]) -> None:
    path, _ = key
    before = path.read_bytes()
    refused(cli("keygen", "-o", str(path)), f"{re.escape(str(path))} already exists: not overwriting it")
    assert path.read_bytes() == before


def test_keygen_without_a_file_prints_the_identity(age_cli: None, tmp_path: Path) -> None:
    run = cli("keygen")
    assert run.returncode == 0 and run.stderr.startswith("Public key: age1")
    identity_file = tmp_path / "key.txt"
    identity_file.write_text(run.stdout)
    public = subprocess.run([AGE_KEYGEN, "-y", str(identity_file)], capture_output=True, text=True,
                            check=True).stdout
    assert run.stderr == f"Public key: {public}"


@pytest.mark.parametrize("armor", [True, False], ids=["armored", "binary"])
def test_our_keys_open_what_age_sealed(age_cli: None, key: tuple[Path, Recipient], tmp_path: Path,
                                       armor: bool) -> None:
    path, recipient = key
    sealed = tmp_path / "credentials.age"
    subprocess.run([AGE, "-r", str(recipient), "-o", str(sealed), *(["-a"] if armor else [])],
                   input=json.dumps(CREDENTIALS).encode(), check=True)
    run = cli("open", str(sealed), "--identity", str(path))
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == CREDENTIALS


def test_age_opens_what_we_sealed_with_our_keys(age_cli: None, key: tuple[Path, Recipient]) -> None:
    path, recipient = key
    sealed = encrypt(json.dumps(CREDENTIALS).encode(), [recipient])
    opened = subprocess.run([AGE, "-d", "-i", str(path)], input=sealed, capture_output=True, check=True)
    assert json.loads(opened.stdout) == CREDENTIALS


def test_age_keygens_identity_files_open(age_cli: None, tmp_path: Path) -> None:
    path = tmp_path / "age-keygen.txt"
    subprocess.run([AGE_KEYGEN, "-o", str(path)], check=True, capture_output=True)
    public = subprocess.run([AGE_KEYGEN, "-y", str(path)], capture_output=True, text=True, check=True).stdout
    sealed = encrypt(json.dumps(CREDENTIALS).encode(), [Recipient.parse(public)], armor=False)
    run = cli("open", "-", "--identity", str(path), "--field", "apiKey", stdin=sealed)
    assert (run.returncode, run.stdout) == (0, API_KEY + "\n"), run.stderr


def test_a_field_prints_alone(key: tuple[Path, Recipient]) -> None:
    path, recipient = key
    sealed = encrypt(json.dumps(CREDENTIALS).encode(), [recipient])
    run = cli("open", "-", "-i", str(path), "--field", "privateKeyPem", stdin=sealed)
    assert run.stdout == PEM + "\n"  # as it is: a string, not its JSON
    run = cli("open", "-", "-i", str(path), "--field", "ipWhitelist", stdin=sealed)
    assert json.loads(run.stdout) == CREDENTIALS["ipWhitelist"]
    refused(cli("open", "-", "-i", str(path), "--field", "secretKey", stdin=sealed),
            "no field 'secretKey' in the credentials; their fields: apiKey, ipWhitelist, privateKeyPem")


def test_a_file_for_another_system_is_refused(key: tuple[Path, Recipient]) -> None:
    path, _ = key
    sealed = encrypt(json.dumps(CREDENTIALS).encode(), [generate_identity().recipient])
    refused(cli("open", "-", "-i", str(path), stdin=sealed), "not addressed to this identity")


def test_a_modified_file_prints_nothing(key: tuple[Path, Recipient]) -> None:
    path, recipient = key
    sealed = encrypt(json.dumps(CREDENTIALS).encode(), [recipient], armor=False)
    refused(cli("open", "-", "-i", str(path), stdin=sealed[:-1] + bytes([sealed[-1] ^ 1])),
            re.escape("the file was modified or truncated (payload chunk 0 does not verify)"))


@pytest.mark.parametrize(("content", "message"), [
    (b"apiKey=abc", "the decrypted content is not JSON"),
    (b'["abc"]', "the decrypted content is JSON, but not an object"),
])
def test_content_other_than_a_json_object_is_refused(key: tuple[Path, Recipient], content: bytes,
                                                     message: str) -> None:
    path, recipient = key
    refused(cli("open", "-", "-i", str(path), stdin=encrypt(content, [recipient])), message)


def test_an_identity_file_others_can_read_is_refused(key: tuple[Path, Recipient], tmp_path: Path) -> None:
    path, recipient = key
    shared = tmp_path / "shared.key"
    shared.write_bytes(path.read_bytes())
    shared.chmod(0o640)
    sealed = encrypt(json.dumps(CREDENTIALS).encode(), [recipient])
    refused(cli("open", "-", "-i", str(shared), stdin=sealed),
            f"identity file {re.escape(str(shared))} is open to group or others \\(mode 0640\\): "
            f"run chmod 600 {re.escape(str(shared))}")


def test_missing_files_are_named(key: tuple[Path, Recipient], tmp_path: Path) -> None:
    path, _ = key
    missing = tmp_path / "nowhere"
    refused(cli("open", str(missing), "-i", str(path)),
            f"cannot read {re.escape(str(missing))}: No such file or directory")
    refused(cli("open", "-", "-i", str(missing)),
            f"cannot read identity file {re.escape(str(missing))}: No such file or directory")


def test_a_malformed_identity_file_is_named_without_its_secret(key: tuple[Path, Recipient],
                                                               tmp_path: Path) -> None:
    path, _ = key
    secret = path.read_text().splitlines()[2]
    broken = tmp_path / "broken.key"
    broken.write_text(secret[:-1] + ("Q" if secret[-1] != "Q" else "P") + "\n")
    broken.chmod(0o600)
    run = cli("open", "-", "-i", str(broken))
    refused(run, "identity file, line 1: invalid age identity: bech32: the checksum does not match .*")
    assert secret[16:40] not in run.stderr


def test_importing_the_reader_loads_neither_pulumi_nor_cryptography() -> None:
    code = ("import sys, margin_special_keys.credentials; "
            "print(sorted(m for m in ('pulumi', 'grpc', 'requests', 'cryptography') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout == "[]\n"
