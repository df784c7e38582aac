"""Binance's error answers as typed exceptions with messages a person can act on: one class per
code family, below BinanceAPIError in the package's one tree (errors.py).

Messages carry the exchange's code, its text (marked, and only from Binance's own hosts) and our
advice; never a request's parameters, signature or any credential.
"""

from __future__ import annotations

from ..errors import BinanceError


class BinanceAPIError(BinanceError):
    """The exchange answered with an error body `{"code", "msg"}`."""

    advice = ""
    retry_after: float | None = None  # seconds, from a Retry-After header, within bounds

    def __init__(self, status: int, code: int | None, msg: str, operation: str) -> None:
        self.status = status
        self.code = code
        self.msg = msg
        self.operation = operation
        text = f"{operation}: Binance answered HTTP {status}"
        if code is not None:
            text += f" code {code}"
        if msg:
            text += f": {exchange_text(msg)}"
        if self.advice:
            text += f" — {self.advice}"
        super().__init__(text)


# The exchange's own words inside our messages, always between these marks: the runner's
# pull-request summary drops whatever stands between them (gitops/report.py), so a summary holds
# our text and Binance's codes, never bytes an exchange or another service sent.
EXCHANGE_TEXT_OPEN, EXCHANGE_TEXT_CLOSE = "«", "»"


def exchange_text(value: object, limit: int = 200) -> str:
    """`value`, as the exchange sent it, made inert and marked: printable characters only, the
    marks themselves removed, at most `limit` characters."""
    text = "".join(c for c in str(value) if c.isprintable() and c not in "«»")[:limit]
    return f"{EXCHANGE_TEXT_OPEN}{text}{EXCHANGE_TEXT_CLOSE}"


class AuthenticationError(BinanceAPIError):
    advice = (
        "the provider's API key (binance:apiKey) is invalid, lacks \"Enable Spot & Margin"
        " Trading\", or the IP this runs from is not on that key's list"
    )


class SignatureError(BinanceAPIError):
    advice = (
        "the signature did not verify: check that binance:secretKey or binance:privateKey"
        " belongs to binance:apiKey"
    )


class TimestampError(BinanceAPIError):
    retry_safe = True  # after the clock is synced with the exchange's
    advice = "this machine's clock is too far from Binance's; sync it (NTP) or raise binance:recvWindow"


class UnknownApiKey(BinanceAPIError):
    # -2008 is not in Binance's current error list: never taken alone as proof that a key is
    # gone; the provider asks the key list.
    advice = "no special key with that apiKey exists on this account and symbol"


class InvalidRequest(BinanceAPIError):
    advice = "the exchange refused the request's parameters"


class NotMarginPair(BinanceAPIError):
    advice = "the symbol is not an isolated margin pair of this account; open it in Isolated Margin first"


class IsolatedAccountMissing(BinanceAPIError):
    advice = ("the isolated margin account of this pair does not exist: open it (transfer into"
              " the pair in Isolated Margin) or remove the key's symbol")


class MarginAccountMissing(BinanceAPIError):
    advice = "this account has no margin account: open Margin on Binance first"


class UnsupportedAccount(BinanceAPIError):
    advice = (
        "this account cannot hold special keys: Portfolio Margin accounts are unsupported;"
        " Cross Margin (Classic), Isolated Margin and Portfolio Margin Pro are"
    )


class RateLimited(BinanceAPIError):
    retry_safe = True  # after the wait Retry-After asks for
    advice = "the request-weight limit was hit; waited as Retry-After said, then gave up"


class ServerError(BinanceAPIError):
    advice = "Binance had an internal problem; the request's outcome is unknown"


_BY_CODE: dict[int, type[BinanceAPIError]] = {
    -1021: TimestampError,
    -1022: SignatureError,
    -2014: AuthenticationError,
    -2015: AuthenticationError,
    -2008: UnknownApiKey,
    -1100: InvalidRequest,
    -1102: InvalidRequest,
    -1103: InvalidRequest,
    -1131: InvalidRequest,
    -3026: InvalidRequest,
    -3028: NotMarginPair,
    -11001: IsolatedAccountMissing,
    -3003: MarginAccountMissing,
    -1020: UnsupportedAccount,
    -1002: AuthenticationError,
    -1003: RateLimited,
}


# "Execution status unknown" (Binance's error codes list): the request may have been carried out,
# whatever HTTP status carries the code.
UNKNOWN_OUTCOME_CODES = (-1006, -1007)


def error_for(status: int, code: int | None, msg: str, operation: str) -> BinanceAPIError:
    if status in (429, 418):
        return RateLimited(status, code, msg, operation)
    if status >= 500 or code in UNKNOWN_OUTCOME_CODES:
        return ServerError(status, code, msg, operation)
    cls = _BY_CODE.get(code, BinanceAPIError) if code is not None else BinanceAPIError
    return cls(status, code, msg, operation)
