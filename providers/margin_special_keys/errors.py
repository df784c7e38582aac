"""Everything the package raises, in one tree.

    MarginSpecialKeysError                 the root
    ├── ConfigurationError                 the provider's own settings are missing or wrong
    ├── InvalidInput (ValueError)          a declared value is refused, at its path
    │   ├── InvalidSpec                    a key's inputs (spec.py)
    │   ├── StackConfigError               a stack's key list (stack_config.py)
    │   └── PolicyConfigError              a policy pack's config (policies.py)
    ├── PlanRefused                        the plan cannot be carried out as declared
    │   ├── AccountKeyLimit                the account cannot hold the keys the run would create
    │   ├── DuplicateName                  a name this stack does not own is taken in the scope
    │   └── AccountMismatch                the key is another account's than the provider's
    ├── ExchangeDisagrees                  the exchange does not hold what was written or declared
    │   ├── ExchangeStateMismatch          it holds something else (IPs, name, type)
    │   └── KeyNotOnExchange               its key list lacks the key (decided from the list)
    ├── BinanceError                       talking to the exchange: only answers and transport
    │   ├── NotSent                        the request never left this machine
    │   ├── OutcomeUnknown                 it may have been carried out (5xx, timeout, drop)
    │   ├── MalformedAnswer                a 200 whose body is not the documented shape
    │   └── BinanceAPIError                an error answer `{"code", "msg"}` (binance/errors.py
    │                                      maps each code to its class: signature, timestamp,
    │                                      rate limit, unknown apiKey, …)
    ├── RunnerError                        the runner cannot work on a stack as it is (gitops/)
    │   ├── StackNotFound, StackUnavailable, LocksUnreadable
    │   └── Refused, Busy                  a deletion the audit may not make (gitops/audit.py)
    └── AgeError (ValueError)              a sealed file that cannot be opened (age.py)

As requests' exceptions do, each class says whether the same call may simply be made again
(`retry_safe`): only where nothing happened (NotSent) or the exchange asked for a wait (rate
limits) or a clock sync (timestamps). An unknown outcome is never retried blindly: a create is
reconciled against the key list first (account.py).
"""

from __future__ import annotations


class MarginSpecialKeysError(Exception):
    """The root of everything this package raises."""

    retry_safe: bool = False


class ConfigurationError(MarginSpecialKeysError):
    """The provider's own settings (credentials, base URL, limits) are missing or wrong."""


class InvalidInput(MarginSpecialKeysError, ValueError):
    """A declared value is refused; the message names the field (never a sensitive value)."""


class PlanRefused(MarginSpecialKeysError):
    """The plan cannot be carried out as declared; nothing was changed for it."""


class AccountKeyLimit(PlanRefused):
    """The account cannot hold the keys this run would create (Binance's 30-key limit)."""


class DuplicateName(PlanRefused):
    """An apiName this resource does not own already exists in the key's scope."""


class AccountMismatch(PlanRefused):
    """The key belongs to another account than the one the provider now signs for."""


class WindowStillOpen(PlanRefused):
    """A rotation would delete a previous key before its overlap window ends."""


class ExchangeDisagrees(MarginSpecialKeysError):
    """The exchange does not hold what was written to it or declared."""


class ExchangeStateMismatch(ExchangeDisagrees):
    """The exchange holds something else than expected (an IP list, a name, a key type)."""


class KeyNotOnExchange(ExchangeDisagrees):
    """The key named does not exist on the account: a fresh key list lacks it."""


class BinanceError(MarginSpecialKeysError):
    """Talking to the exchange: its answers, and the transport to it."""


class NotSent(BinanceError):
    """The request never left this machine (connection refused, DNS failure, TLS refused):
    nothing happened on the exchange, so nothing needs reconciling."""

    retry_safe = True


class OutcomeUnknown(BinanceError):
    """The request may or may not have been carried out (5xx, timeout, dropped connection).

    Binance documents 5xx answers as "execution status UNKNOWN": a create that ends this way must
    be reconciled against the exchange before it is retried.
    """


class MalformedAnswer(BinanceError):
    """A 200 whose body is not the documented shape."""


class RunnerError(MarginSpecialKeysError):
    """The runner cannot work on a stack as it is; the message says what to do."""


class UnscheduledChanges(RunnerError):
    """`gitops rotate` found changes in a preview that time alone did not make due: it applies
    nothing to that stack."""
