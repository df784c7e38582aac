"""Binance margin special keys as Pulumi resources. Installed as `margin_special_keys`.

`margin_special_keys.margin_special_key.MarginSpecialKeyProvider` is part of the state format:
Pulumi pickles the provider class by reference into every resource's state, and a later refresh
or destroy imports it again. Keep that module path and class name stable (docs/state-format.md).
"""

import importlib
import sys

if __name__ != "margin_special_keys":
    # This folder imported by another name: `providers`, the path that states written before 0.2.0
    # pickled (`providers.margin_special_key.MarginSpecialKeyProvider`), found from a checkout of
    # this repository. Those states refresh and destroy with the installed module, not a second copy
    # of it; their next `up` rewrites the path (MarginSpecialKeyProvider.diff).
    sys.modules[f"{__name__}.margin_special_key"] = importlib.import_module(
        "margin_special_keys.margin_special_key")

from margin_special_keys.margin_special_key import MarginSpecialKey, MarginSpecialKeyProvider  # noqa: E402

__all__ = ["MarginSpecialKey", "MarginSpecialKeyProvider"]
