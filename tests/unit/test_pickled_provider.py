"""The provider as Pulumi pickles it into every resource's state.

By reference, with no state: no credential can be in it, and it is the same bytes wherever the
project is checked out.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from pathlib import Path

from tests.harness import ROOT

SERIALIZE = """
import sys
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.config import Config
import providers
from providers.margin_special_key import MarginSpecialKeyProvider

provider = MarginSpecialKeyProvider()
if len(sys.argv) > 1:  # configured as in the provider process, then pickled again
    provider.configure(ConfigureRequest(Config({
        "binance:apiKey": "CREDENTIALAPIKEY0123456789", "binance:secretKey": "CREDENTIALSECRET0123456789",
        "binance:baseUrl": "http://127.0.0.1:1"}, "margin-special-keys")))
    provider._keys()
print(providers.__file__, file=sys.stderr)
print(serialize_provider(provider))
"""

LOAD = """
import base64, sys, dill
provider = dill.loads(base64.b64decode(sys.stdin.read()))
print(type(provider).__module__ + "." + type(provider).__qualname__)
"""


def pickled(cwd: Path, *args: str) -> tuple[str, str]:
    out = subprocess.run([sys.executable, "-c", SERIALIZE, *args], cwd=cwd, capture_output=True,
                         text=True, check=True)
    return out.stdout.strip(), out.stderr.strip()


def checkout(tmp_path: Path) -> Path:
    copy = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(ROOT / "providers", copy / "providers",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_pickle_is_by_reference_and_tiny() -> None:
    blob, _ = pickled(ROOT)
    raw = base64.b64decode(blob)
    assert b"providers.margin_special_key" in raw and b"MarginSpecialKeyProvider" in raw
    assert len(raw) < 400, len(raw)
    assert b"co_code" not in raw and str(ROOT).encode() not in raw


def test_configured_provider_pickles_without_credentials() -> None:
    blob, _ = pickled(ROOT, "configured")
    raw = base64.b64decode(blob)
    assert b"CREDENTIAL" not in raw
    assert blob == pickled(ROOT)[0]


def test_same_bytes_from_another_checkout_and_loads_there(tmp_path: Path) -> None:
    copy = checkout(tmp_path)
    here, _ = pickled(ROOT)
    there, loaded_from = pickled(copy)
    assert loaded_from.startswith(str(copy))  # really the other checkout's code
    assert there == here
    out = subprocess.run([sys.executable, "-c", LOAD], cwd=copy, input=here, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "providers.margin_special_key.MarginSpecialKeyProvider"
