"""What a trading system receives: a key's credentials sealed to its own age recipients.

A key declared with `deliverTo` gets the output `sealed_credentials`: an age file (ASCII armor)
that only those recipients can open, holding its credentials as JSON, and during an overlap
window the previous key's. Whoever holds the state, the passphrase or the published file learns
nothing from it without one of the recipients' identities; a trading system needs neither the
state nor the passphrase (`python -m margin_special_keys.credentials open`, or `age -d`).

    {"apiName": "cross-1", "symbol": null, "keyType": "ED25519", "apiKey": "…",
     "privateKey": "-----BEGIN PRIVATE KEY-----…", "sealedAtMs": 1796306400000,
     "previous": {"apiKey": "…", "keyType": "ED25519", "privateKey": "…",
                  "retiresAtMs": 1796392800000, "retiresAt": "2026-12-04 14:00 UTC"}}
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

FIELD = "sealed_credentials"


def contents(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The credentials a resource's outputs hand to its trading system."""
    from .spec import utc

    sealed: dict[str, Any] = {
        "apiName": outputs.get("api_name"), "symbol": outputs.get("symbol"),
        "keyType": outputs.get("key_type"), "apiKey": outputs.get("api_key"),
    }
    for field, name in (("private_key", "privateKey"), ("secret_key", "secretKey")):
        if outputs.get(field):
            sealed[name] = outputs[field]
    if outputs.get("previous_api_key"):
        previous: dict[str, Any] = {"apiKey": outputs["previous_api_key"],
                                    "keyType": outputs.get("previous_key_type")}
        for field, name in (("previous_private_key", "privateKey"),
                            ("previous_secret_key", "secretKey")):
            if outputs.get(field):
                previous[name] = outputs[field]
        retires = outputs.get("previous_retires_at_ms")
        if isinstance(retires, (int, float)):
            previous.update(retiresAtMs=int(retires), retiresAt=utc(retires))
        sealed["previous"] = previous
    return sealed


def seal(outputs: Mapping[str, Any]) -> str | None:
    """`outputs`' credentials sealed to its `deliver_to` recipients; None without any."""
    recipients = outputs.get("deliver_to")
    if not recipients:
        return None
    from .age import Recipient, encrypt

    body = {**contents(outputs), "sealedAtMs": int(time.time() * 1000)}
    return encrypt(json.dumps(body, sort_keys=True).encode(),
                   [Recipient.parse(r) for r in recipients]).decode("ascii")


def resealed(outputs: dict[str, Any]) -> dict[str, Any]:
    """`outputs` with `sealed_credentials` made afresh for what they hold now (or dropped, when no
    recipient is declared any more)."""
    outputs = dict(outputs)
    outputs.pop(FIELD, None)
    sealed = seal(outputs)
    if sealed is not None:
        outputs[FIELD] = sealed
    return outputs
