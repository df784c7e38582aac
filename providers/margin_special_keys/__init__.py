"""Binance margin special keys as Pulumi resources. Installed as `margin_special_keys`.

`margin_special_keys.margin_special_key.MarginSpecialKeyProvider` is part of the state format:
Pulumi pickles the provider class by reference into every resource's state, and a later refresh
or destroy imports it again. Keep that module path and class name stable (docs/state-format.md).
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .margin_special_key import MarginSpecialKeyProvider
    from .resource import MarginSpecialKey

# Each name and the module it lives in.
_HOMES = {"MarginSpecialKey": "margin_special_keys.resource",
          "MarginSpecialKeyProvider": "margin_special_keys.margin_special_key"}
__all__ = ["MarginSpecialKey", "MarginSpecialKeyProvider"]


def __getattr__(name: str) -> Any:
    """The resource and its provider, imported on first use: they import Pulumi's SDK (about
    0.25 s of CPU), which the runner, the preflight and the sandbox, all in this package, never need."""
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
