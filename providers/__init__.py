"""Binance margin special keys as Pulumi resources.

`providers.margin_special_key` is part of the state format (Pulumi pickles the provider class
by reference): keep that module path and class name stable.
"""

from .margin_special_key import MarginSpecialKey, MarginSpecialKeyProvider

__all__ = ["MarginSpecialKey", "MarginSpecialKeyProvider"]
