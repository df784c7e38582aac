"""What Binance's identifiers and key material look like: one place for every module that checks them."""

from __future__ import annotations

import re

# An apiKey (of a normal or special key): letters and digits.
API_KEY_PATTERN = re.compile(r"^[A-Za-z0-9]{1,128}$")
# An HMAC secret Binance made: letters and digits.
HMAC_SECRET_PATTERN = re.compile(r"^[A-Za-z0-9]{16,128}$")
# The RSA key sizes Binance takes (Create Special Key: "RSA 2048 or 4096").
RSA_BITS = (2048, 4096)
