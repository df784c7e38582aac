"""The one shim the tree keeps: the provider's path as 0.1.0 pickled it into every state
(`providers.margin_special_key.MarginSpecialKeyProvider`), when it ran from a checkout of this
repository. From a checkout, `providers` is this folder (a namespace package), and this module
stands for the installed one: such a state refreshes and destroys with the installed class, never
a second copy of it, and its next `up` rewrites the path (MarginSpecialKeyProvider.diff). The
wheel does not ship it (docs/state-format.md).
"""

import sys

from margin_special_keys import margin_special_key

sys.modules[__name__] = margin_special_key
