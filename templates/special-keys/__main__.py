"""This stack's margin special keys: the ones stacks/Pulumi.<stack>.yaml declares."""

from margin_special_keys.program import main

main()
