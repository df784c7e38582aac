"""The provider as Pulumi pickles it into every resource's state (docs/state-format.md).

By reference, with no state: no credential can be in it, and it is the same bytes wherever the
package is installed. States written by 0.1.0 (`providers.margin_special_key`) still load, from a
checkout of this repository, as the installed class.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

from margin_special_keys import state_format
from tests.harness import ROOT

LEGACY_BLOB = (ROOT / "tests" / "fixtures" / "provider-pickle-0.1.0.b64").read_text().strip()

SERIALIZE = """
import sys
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.config import Config
from margin_special_keys.margin_special_key import MarginSpecialKeyProvider

provider = MarginSpecialKeyProvider()
if len(sys.argv) > 1:  # configured as in the provider process, then pickled again
    import os
    os.environ["BINANCE_ALLOW_BASE_URL"] = "http://127.0.0.1:1"  # the run vouches for it
    provider.configure(ConfigureRequest(Config({
        "binance:apiKey": "CREDENTIALAPIKEY0123456789", "binance:secretKey": "CREDENTIALSECRET0123456789",
        "binance:baseUrl": "http://127.0.0.1:1"}, "margin-special-keys")))
    provider._keys()
print(serialize_provider(provider))
"""

# What Pulumi's dynamic provider process does with a state's `__provider` (dill.loads).
LOAD = """
import base64, sys, dill
provider = dill.loads(base64.b64decode(sys.stdin.read()))
import margin_special_keys.margin_special_key as installed
assert type(provider) is installed.MarginSpecialKeyProvider, "a second copy of the module"
print(type(provider).__module__ + "." + type(provider).__qualname__)
"""


def pickled(cwd: Path, *args: str) -> str:
    out = subprocess.run([sys.executable, "-c", SERIALIZE, *args], cwd=cwd, capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def load(blob: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", LOAD], cwd=cwd, input=blob, capture_output=True,
                          text=True)


def test_pickle_is_by_reference_to_the_installed_path_and_tiny() -> None:
    raw = base64.b64decode(pickled(ROOT))
    assert state_format.PROVIDER_MODULE.encode() in raw and state_format.PROVIDER_CLASS.encode() in raw
    assert len(raw) < 400, len(raw)
    assert b"co_code" not in raw and str(ROOT).encode() not in raw and b"providers" not in raw


def test_configured_provider_pickles_without_credentials() -> None:
    blob = pickled(ROOT, "configured")
    assert b"CREDENTIAL" not in base64.b64decode(blob)
    assert blob == pickled(ROOT)


def test_same_bytes_from_any_directory_and_loads_there(tmp_path: Path) -> None:
    assert pickled(tmp_path) == pickled(ROOT)
    out = load(pickled(ROOT), tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == state_format.PROVIDER_PATH


def test_a_state_pickled_by_0_1_0_loads_as_the_installed_class_from_a_checkout() -> None:
    assert b"providers.margin_special_key" in base64.b64decode(LEGACY_BLOB)
    out = load(LEGACY_BLOB, ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == state_format.PROVIDER_PATH


def test_a_legacy_pickle_is_recognised_so_the_next_up_rewrites_it() -> None:
    assert state_format.pickled_module_is_legacy({"__provider": LEGACY_BLOB})
    assert not state_format.pickled_module_is_legacy({"__provider": pickled(ROOT)})
    assert not state_format.pickled_module_is_legacy({"__provider": "not base64 at all!"})
    assert not state_format.pickled_module_is_legacy({})
