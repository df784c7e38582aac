"""One error tree: every exception the package raises descends from one root, and the families
say what went wrong: configuration, invalid input, a refused plan, the exchange disagreeing, the
exchange's own answers (only those are BinanceErrors), the runner."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import margin_special_keys
from margin_special_keys import errors
from margin_special_keys.binance import errors as binance_errors

INTERNAL = {"margin_special_keys.sandbox"}  # the exchange's own refusals, turned into HTTP answers


def package_exceptions() -> list[type[BaseException]]:
    found = []
    for module in pkgutil.walk_packages(margin_special_keys.__path__, "margin_special_keys."):
        if any(module.name.startswith(p) for p in INTERNAL) or module.name.endswith("__main__"):
            continue
        loaded = importlib.import_module(module.name)
        found += [c for _, c in inspect.getmembers(loaded, inspect.isclass)
                  if issubclass(c, BaseException) and c.__module__ == loaded.__name__]
    return found


def test_everything_the_package_raises_descends_from_one_root() -> None:
    classes = package_exceptions()
    assert len(classes) > 20
    assert [c.__qualname__ for c in classes if not issubclass(c, errors.MarginSpecialKeysError)] == []


def test_only_the_exchanges_answers_and_transport_are_binance_errors() -> None:
    for refused in (errors.AccountKeyLimit, errors.DuplicateName, errors.AccountMismatch,
                    errors.ExchangeStateMismatch, errors.KeyNotOnExchange, errors.ConfigurationError,
                    errors.InvalidInput):
        assert not issubclass(refused, errors.BinanceError), refused
    assert issubclass(binance_errors.BinanceAPIError, errors.BinanceError)
    assert issubclass(binance_errors.UnknownApiKey, errors.BinanceError)


def test_the_tree_says_which_errors_are_safe_to_retry() -> None:
    safe = {c for c in package_exceptions() if c.retry_safe}  # type: ignore[attr-defined]
    assert safe == {errors.NotSent, binance_errors.RateLimited, binance_errors.TimestampError}
    assert not errors.OutcomeUnknown.retry_safe and not binance_errors.ServerError.retry_safe
