"""What the test levels share, on top of the shared infrastructure in the packages: a running
sandbox (devtools/sandbox.py) and Pulumi projects on the real engine (devtools/engine.py), plus what
only tests need: a person's own script on a sandbox account, secret comparisons, fault tables.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
from pathlib import Path
from typing import Any

from devtools.engine import ROOT, TOOLS_BIN, ensure_engine
from devtools.engine import PulumiProject as _PulumiProject
from devtools.sandbox import SandboxAccount
from devtools.sandbox import SandboxProcess as _SandboxProcess
from margin_special_keys.binance.client import BinanceClient
from margin_special_keys.gitops.engine import Run

__all__ = ["FULL_TABLES", "ROOT", "TOOLS_BIN", "PassphraseSecrets", "PulumiProject", "Run",
           "SandboxAccount", "SandboxProcess", "ensure_engine", "same_secret", "TEST_IPS",
           "UNKNOWN_OUTCOME_FAULTS"]

# `make proof` (PROOF_REPORT set) runs every cell of the engine-level tables (docs/reliability.md);
# `make test` runs one cell per operation or key type there, since tests/provider runs each table
# whole, in process, against the sandbox.
FULL_TABLES = bool(os.environ.get("PROOF_REPORT"))

TEST_IPS = ["198.51.100.7"]  # a documentation address (RFC 5737): the whitelist of test keys

# Sandbox fault rules for the four ways a request's outcome goes wrong, shared by every level.
UNKNOWN_OUTCOME_FAULTS: dict[str, dict[str, Any]] = {
    "5xx before acting": {"action": "error", "status": 503, "code": -1001, "msg": "Internal error."},
    "5xx after acting": {"action": "error_after", "status": 500},
    "connection dropped after acting": {"action": "drop_after"},
    "429 with Retry-After": {"action": "error", "status": 429, "code": -1003,
                             "msg": "Too many requests.", "retry_after": 1},
}


def allow_endpoint(url: str) -> None:
    """The test run's environment vouches for a sandbox, as a firm's sandbox pipeline does: stack
    config alone never aims the provider at a loopback endpoint (settings.check_base_url). Every
    engine process a test starts inherits it (PulumiProject.env keeps it)."""
    from margin_special_keys.settings import ALLOW_BASE_URL_ENV

    allowed = [u for u in os.environ.get(ALLOW_BASE_URL_ENV, "").split(",") if u]
    for variant in (url, url.replace("127.0.0.1", "localhost")):
        if variant not in allowed:
            allowed.append(variant)
    os.environ[ALLOW_BASE_URL_ENV] = ",".join(allowed)


class SandboxProcess(_SandboxProcess):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        allow_endpoint(self.base_url)

    def script_client(self, account: dict[str, str]) -> BinanceClient:
        """Someone's own script on this account, making or editing keys behind the stack's back."""
        from margin_special_keys.settings import make_client, read_settings

        config = {"binance:apiKey": account["apiKey"], "binance:baseUrl": self.base_url}
        config.update({"binance:privateKey": account["privateKey"]} if "privateKey" in account
                      else {"binance:secretKey": account["secretKey"]})
        return make_client(read_settings(config.get, os.environ))


def same_secret(held: str | None, expected: str | None) -> bool:
    """Compare secrets by digest, so a failing assertion never prints one."""
    def digest(value: str | None) -> str | None:
        return None if value is None else hashlib.sha256(value.strip().encode()).hexdigest()

    return digest(held) == digest(expected)


class PassphraseSecrets:
    """Pulumi's passphrase secrets, sealed here as the CLI seals them (pkg/secrets/passphrase and
    sdk/go/common/resource/config/crypt.go, v3.274.1): a 32-byte key from PBKDF2-SHA256 with
    1,000,000 iterations of the passphrase and the stack's salt; each value AES-256-GCM with a
    random 12-byte nonce, written `v1:<nonce>:<ciphertext>` in standard base64; the stack's
    `encryptionsalt` is `v1:<salt>:` and the word "pulumi" sealed, which proves the passphrase.

    Every test stack gets one salt, so its key is derived once per test process rather than in
    each `pulumi config set --secret` (0.5 s of CPU each here). The engine still decrypts every
    value on every command; tests/e2e/test_engine_floor.py shows it reads back what this seals."""

    SALT = b"msk-test"  # 8 bytes, as the CLI makes them

    def __init__(self, passphrase: str) -> None:
        self.passphrase = passphrase

    @functools.cached_property
    def _key(self) -> bytes:
        return hashlib.pbkdf2_hmac("sha256", self.passphrase.encode(), self.SALT, 1_000_000, 32)

    def seal(self, value: str) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(12)
        sealed = AESGCM(self._key).encrypt(nonce, value.encode(), None)
        return f"v1:{base64.b64encode(nonce).decode()}:{base64.b64encode(sealed).decode()}"

    def salt_prefix(self) -> str:
        return f"v1:{base64.b64encode(self.SALT).decode()}:"

    def encryption_salt(self) -> str:
        return self.salt_prefix() + self.seal("pulumi")


@functools.cache
def _secrets(passphrase: str) -> PassphraseSecrets:
    return PassphraseSecrets(passphrase)


_INITIALIZED: dict[tuple[str, str, str], Path] = {}


def _initialized_stack(project_file: Path, stack_file: Path, home: Path, stack: str,
                       passphrase: str) -> Path:
    """The `.pulumi` folder a real `pulumi stack init` made for this project's name and this
    stack, in a scratch project of its own (made once per test process)."""
    import atexit
    import shutil
    import tempfile

    import yaml

    project_name = str(yaml.safe_load(project_file.read_text())["name"])
    key = (project_name, stack, passphrase)
    if key not in _INITIALIZED:
        scratch = Path(tempfile.mkdtemp(prefix="stack-init-"))
        atexit.register(shutil.rmtree, scratch, True)
        shutil.copy(project_file, scratch / "Pulumi.yaml")
        (scratch / "state").mkdir()
        template = _PulumiProject(scratch, home, stack, passphrase)
        template.config_file().parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(stack_file, template.config_file())
        _PulumiProject.init_stack(template)
        _INITIALIZED[key] = scratch / "state" / ".pulumi"
    return _INITIALIZED[key]


class PulumiProject(_PulumiProject):
    """The engine's project driver, whose keys get TEST_IPS where a test declares no whitelist,
    and whose secrets are sealed in process (PassphraseSecrets)."""

    def init_stack(self) -> None:
        """The stack as `pulumi stack init` makes it, on a stack file that already names the
        shared salt (the CLI keeps it: it only makes a salt where the file has none).

        Every test stack of a (project, stack name) starts the same: the CLI's files for it are
        made once per test process by a real `pulumi stack init`, then copied into each new
        project's file backend (they hold the project, the stack name and the salt, no path)."""
        import shutil

        document = self.stack_file()
        document["encryptionsalt"] = _secrets(self.passphrase).encryption_salt()
        self.write_stack_file(document)
        if self.backend is not None:  # a shared backend: the CLI makes the stack there
            _PulumiProject.init_stack(self)
            return

        made = _initialized_stack(self.directory / "Pulumi.yaml", self.config_file(), self.home,
                                  self.stack, self.passphrase)
        backend = self.directory / "state" / ".pulumi"
        for source in made.rglob("*"):
            target = backend / source.relative_to(made)
            if source.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif not target.exists():  # a second stack keeps the backend's meta.yaml
                shutil.copy2(source, target)

    def set_secret(self, key: str, value: str) -> None:
        """As `pulumi config set --secret` writes it: `secure:` ciphertext in the stack's file.
        A stack the CLI made its own salt for (`pulumi new`) is left to the CLI."""
        secrets = _secrets(self.passphrase)
        if not str(self.stack_file().get("encryptionsalt", "")).startswith(secrets.salt_prefix()):
            super().set_secret(key, value)
            return
        self._edit_config(key, {"secure": secrets.seal(value)})

    def set_keys(self, keys: list[dict[str, Any]], *, as_given: bool = False) -> None:
        """Every trading key needs a whitelist (or allowAnyIp); `as_given` declares exactly what
        the test wrote."""
        if not as_given:
            keys = [k if not isinstance(k, dict) or "ipWhitelist" in k or "allowAnyIp" in k
                    else {**k, "ipWhitelist": TEST_IPS} for k in keys]
        super().set_keys(keys)
