"""The firm's CrossGuard policy pack for MarginSpecialKey: its rules live in the package
(margin_special_keys.policies), so the pack and the resource are one version (docs/policy-pack.md)."""

from pulumi_policy import PolicyPack

from margin_special_keys.policies import PACK_DESCRIPTION, PACK_NAME, policies

PolicyPack(PACK_NAME, policies(), description=PACK_DESCRIPTION)
