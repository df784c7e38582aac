"""What Pulumi keeps of this package in a stack's state, and how older states are carried forward.

Pulumi's dynamic provider pickles the provider *by reference* into every resource's `__provider`
property: the module path and class name, no code and no settings. A refresh or destroy imports
that path again, in the dynamic provider process, before any of the program runs. So the path is
the state format (docs/state-format.md).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

PROVIDER_PATH = "margin_special_keys.margin_special_key.MarginSpecialKeyProvider"
PROVIDER_MODULE, PROVIDER_CLASS = PROVIDER_PATH.rsplit(".", 1)

# Paths earlier versions pickled. 0.1.0 was not installable: it ran from a checkout of this
# repository, whose `providers/` folder is still importable there (providers/__init__.py aliases it).
LEGACY_PROVIDER_MODULES = ("providers.margin_special_key",)


def pickled_module_is_legacy(props: Mapping[str, Any]) -> bool:
    """True when `props["__provider"]` names the provider by a path an earlier version pickled,
    so that the next `up` rewrites it (an update that sends nothing to the exchange)."""
    blob = props.get("__provider")
    if not isinstance(blob, str):
        return False  # unknown during a preview, or absent
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        return False
    # By reference, the module path is a length-prefixed string in the pickle (checked in
    # tests/unit/test_pickled_provider.py); a module whose name merely contains it cannot match,
    # since the length byte before it would differ.
    return any(len(m).to_bytes(1, "little") + m.encode() in raw for m in LEGACY_PROVIDER_MODULES)


# What the provider records in a new key's inputs when it plans the create, under a key the engine
# treats as internal (a `__` prefix: never shown in a diff, never compared by ours): the engine
# writes it into the state's pending create before it calls create, and the orphan audit reads it
# back (gitops/orphans.py). {"preexisting_keys": [digests of the apiKeys the scope held],
# "planned_at_ms": when}. Later checks do not carry it: it only matters while a create is pending.
CREATE_PLAN_KEY = "__create_plan"
