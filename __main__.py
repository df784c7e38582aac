"""This repository's stack program: the keys each stack's config declares (margin_special_keys.program).

An infra repo that depends on the package has the same two lines (docs/install.md, "What a
repository that uses it needs"); or declares `MarginSpecialKey` resources in a program of its own.
"""

from margin_special_keys.program import main

main()
