"""Readings of what Binance leaves undocumented, one switch each, so that one run can try them all.

Every switch names a behaviour the docs do not settle (docs/binance-conformance.md lists the
sources). The default is the strictest plausible reading: the one a careless client would get
wrong. `python -m margin_special_keys.sandbox serve --dialect edit-ip=append,missing-key=-2008`
and the admin route `POST /admin/dialect` select others.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

# switch -> its readings, the default first
CHOICES: dict[str, tuple[str, ...]] = {
    # PUT /sapi/v1/margin/apiKey/ip: does `ip` replace the key's list or add to it?
    "edit-ip": ("replace", "append"),
    # `ip` in query and list answers: with the "initial state" 0.0.0.0 in front, as the Query
    # Special Key docs' example shows, or only the addresses.
    "ip-listing": ("zero-prefix", "plain"),
    # a query, IP edit or delete naming an apiKey the account does not have
    "missing-key": ("empty", "-2008", "-3026"),
    # a second key with an apiName the scope already holds
    "duplicate-name": ("allow", "refuse"),
    # apiName stored as sent or trimmed
    "api-name": ("echo", "trim"),
    # `type` in answers: the docs' spelling (Ed25519, RSA, HMAC_SHA256), upper or lower case
    "type-spelling": ("docs", "upper", "lower"),
    # DELETE with its parameters in a form body: ignored, so refused (reported since January
    # 2026), or read like a POST body
    "delete-body": ("refuse", "accept"),
}


@dataclass(frozen=True)
class Dialect:
    edit_ip: str = "replace"
    ip_listing: str = "zero-prefix"
    missing_key: str = "empty"
    duplicate_name: str = "allow"
    api_name: str = "echo"
    type_spelling: str = "docs"
    delete_body: str = "refuse"

    def __post_init__(self) -> None:
        for f in fields(self):
            switch = f.name.replace("_", "-")
            value = getattr(self, f.name)
            if value not in CHOICES[switch]:
                raise ValueError(f"dialect {switch} must be one of {', '.join(CHOICES[switch])}")

    @classmethod
    def parse(cls, text: str | None) -> Dialect:
        """`switch=value,switch=value`; unnamed switches keep their default."""
        chosen: dict[str, str] = {}
        for item in (text or "").split(","):
            if not item.strip():
                continue
            switch, sep, value = item.partition("=")
            switch = switch.strip()
            if not sep or switch not in CHOICES:
                raise ValueError(f"unknown dialect switch {switch!r}; known: {', '.join(CHOICES)}")
            chosen[switch.replace("-", "_")] = value.strip()
        return cls(**chosen)

    @classmethod
    def from_json(cls, data: dict[str, str]) -> Dialect:
        return cls(**{k.replace("-", "_"): v for k, v in data.items()})

    def as_json(self) -> dict[str, str]:
        return {k.replace("_", "-"): v for k, v in asdict(self).items()}

    def spell_type(self, key_type: str) -> str:
        if self.type_spelling == "upper":
            return key_type.upper()
        if self.type_spelling == "lower":
            return key_type.lower()
        return key_type


def every_variant() -> list[Dialect]:
    """The default and each other reading of each switch, one at a time."""
    variants = [Dialect()]
    for switch, values in CHOICES.items():
        variants += [Dialect(**{switch.replace("-", "_"): v}) for v in values[1:]]
    return variants
