"""Binance's error answers, as the sandbox gives them.

Each error carries the Binance code, the message and the HTTP status it travels with. Where
Binance documents the code and message we use them word for word; where it documents only a label
(UNSUPPORTED_OPERATION) we use the closest documented code and say so.
"""

from __future__ import annotations


class ExchangeError(Exception):
    """A request the exchange refuses. `code` and `msg` form the JSON body `{"code", "msg"}`."""

    status = 400

    def __init__(self, code: int, msg: str, status: int | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        if status is not None:
            self.status = status
        self.retry_after = retry_after  # seconds, sent as the Retry-After header

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


def unknown_error(msg: str = "An unknown error occurred while processing the request.") -> ExchangeError:
    return ExchangeError(-1000, msg, status=500)


def unsupported_operation(msg: str) -> ExchangeError:
    # Binance labels this UNSUPPORTED_OPERATION; -1020 is the documented code of that label.
    return ExchangeError(-1020, f"UNSUPPORTED_OPERATION: {msg}")


def too_many_requests(limit: int, retry_after: int | None = None) -> ExchangeError:
    return ExchangeError(
        -1003,
        f"Too many requests; current limit of UID is {limit} request weight per 1 MINUTE. "
        "Please use the websocket for live updates to avoid polling the API.",
        status=429, retry_after=retry_after,
    )


def illegal_characters(param: str) -> ExchangeError:
    return ExchangeError(-1100, f"Illegal characters found in parameter '{param}'.")


def mandatory_missing(param: str) -> ExchangeError:
    return ExchangeError(
        -1102, f"Mandatory parameter '{param}' was not sent, was empty/null, or malformed."
    )


def ambiguous_key(param: str) -> ExchangeError:
    # Our policy where Binance is silent: without apiKey we act only on a single matching key.
    return ExchangeError(
        -1102,
        f"Mandatory parameter '{param}' was not sent, was empty/null, or malformed."
        " More than one special key matches; send apiKey.",
    )


def unknown_parameter(param: str) -> ExchangeError:
    return ExchangeError(-1103, f"An unknown parameter was sent: '{param}'.")


def bad_recv_window() -> ExchangeError:
    return ExchangeError(-1131, "recvWindow must be less than 60000")


def timestamp_ahead() -> ExchangeError:
    return ExchangeError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")


def timestamp_outside_window() -> ExchangeError:
    return ExchangeError(-1021, "Timestamp for this request is outside of the recvWindow.")


def bad_signature() -> ExchangeError:
    return ExchangeError(-1022, "Signature for this request is not valid.")


def bad_api_key_format() -> ExchangeError:
    return ExchangeError(-2014, "API-key format invalid.", status=401)


def rejected_api_key() -> ExchangeError:
    return ExchangeError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)


def unknown_special_key() -> ExchangeError:
    return ExchangeError(-2008, "Invalid Api-Key ID.")


def invalid_input(detail: str) -> ExchangeError:
    return ExchangeError(-3026, f"Your input param is invalid. {detail}".strip())


def not_a_margin_pair() -> ExchangeError:
    return ExchangeError(-3028, "Not a valid margin pair.")
