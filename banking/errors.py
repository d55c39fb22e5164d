"""Why a banking request did not go through, as a small hierarchy of exceptions.

Every customer-facing failure carries a stable ``code`` so the assistant can pick
a reply without parsing messages, and messages never hold a phone number or a
full account number, so they are safe to log.

    BankingError                      code
    ├── NotConnected                  not_connected
    ├── UnknownAccount                unknown_account     (.accounts: the names the customer has)
    ├── InsufficientFunds             insufficient_funds  (.available_kobo)
    ├── LimitExceeded                 limit_exceeded      (.remaining_kobo, .limit_kobo, .currency)
    ├── AccountFrozen                 account_frozen
    ├── NotFrozen                     not_frozen
    ├── InvalidAmount                 invalid_amount
    ├── InvalidDetails                invalid_details
    ├── NameEnquiryFailed             name_enquiry_failed
    ├── NothingPending                nothing_pending
    │   └── ConfirmationSuperseded    confirmation_superseded
    ├── ConfirmationExpired           confirmation_expired
    ├── AlreadyExecuted               already_executed    (.receipt)
    ├── PaymentAtProvider             payment_at_provider (.payment: waiting for the customer's approval)
    ├── ChangeAlreadyScheduled        change_already_scheduled (.change)
    ├── ProviderUnavailable           provider_unavailable
    │   └── ProviderError             provider_unavailable (banking.hosted: .reason)
    ├── ReadOnlyLink                  read_only_link
    │   └── BillsUnavailable          bills_unavailable   (money moves, but no biller look-up: Mono)
    ├── LinkPending                   link_pending
    └── StorageError                  storage_error
        └── OutcomeUnknown            outcome_unknown

    ConfigError(ValueError)           a deployment mistake, raised at start-up
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from banking.models import ProviderPayment, Receipt, ScheduledChange


class BankingError(Exception):
    """Base of every failure the assistant should explain to the customer."""

    code: str = "banking_error"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.code.replace("_", " "))


class NotConnected(BankingError):
    """The customer has not linked a bank yet (or unlinked it)."""

    code = "not_connected"


class UnknownAccount(BankingError):
    """An account type, transaction reference or record the customer does not have.

    ``accounts``: for an account type, the names of the accounts the customer does have, so
    the answer can name them ("You have Savings"), whatever the provider called them."""

    code = "unknown_account"

    def __init__(self, message: str = "", *, accounts: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.accounts = accounts


class InsufficientFunds(BankingError):
    """The source account cannot cover the amount."""

    code = "insufficient_funds"

    def __init__(self, message: str = "", *, available_kobo: int = 0, account: str = "") -> None:
        super().__init__(message)
        self.available_kobo = available_kobo
        self.account = account  # the source account as the customer reads it (Account.label)


class LimitExceeded(BankingError):
    """The amount would take today's outgoing total over the daily limit."""

    code = "limit_exceeded"

    def __init__(self, message: str = "", *, remaining_kobo: int = 0, limit_kobo: int = 0,
                 currency: str = "NGN") -> None:
        super().__init__(message)
        self.remaining_kobo = remaining_kobo
        self.limit_kobo = limit_kobo
        self.currency = currency  # of the link the money would leave: what the two amounts count


class AccountFrozen(BankingError):
    """The customer froze their accounts; money cannot leave them."""

    code = "account_frozen"


class NotFrozen(BankingError):
    """An unfreeze was asked for while nothing is frozen."""

    code = "not_frozen"


class InvalidAmount(BankingError):
    """Zero, negative, out-of-range or otherwise unusable amount."""

    code = "invalid_amount"


class InvalidDetails(BankingError):
    """A malformed account number, phone number, biller reference, bank or filter."""

    code = "invalid_details"


class NameEnquiryFailed(BankingError):
    """The receiving bank could not resolve the account holder's name."""

    code = "name_enquiry_failed"


class NothingPending(BankingError):
    """There is no pending confirmation with that id for this customer."""

    code = "nothing_pending"


class ConfirmationSuperseded(NothingPending):
    """The customer asked for something else since; only the newest confirmation can be confirmed."""

    code = "confirmation_superseded"


class ConfirmationExpired(BankingError):
    """The customer confirmed too late; they must start again."""

    code = "confirmation_expired"


class AlreadyExecuted(BankingError):
    """The operation already ran (or is running); it will not run twice."""

    code = "already_executed"

    def __init__(self, message: str = "", *, receipt: Receipt | None = None) -> None:
        super().__init__(message)
        self.receipt = receipt


class PaymentAtProvider(BankingError):
    """The operation was confirmed and handed to the provider (Mono DirectPay); it waits for the
    customer's approval on the provider's page and is never started again."""

    code = "payment_at_provider"

    def __init__(self, message: str = "", *, payment: ProviderPayment | None = None) -> None:
        super().__init__(message)
        self.payment = payment


class ChangeAlreadyScheduled(BankingError):
    """An unfreeze (or a limit raise) is already waiting out its cooling-off; it is not replaced.

    The customer can wait for it (``.change.effective_at``) or cancel it and ask again.
    """

    code = "change_already_scheduled"

    def __init__(self, message: str = "", *, change: ScheduledChange | None = None) -> None:
        super().__init__(message)
        self.change = change


class ProviderUnavailable(BankingError):
    """The bank provider did not answer; nothing was changed."""

    code = "provider_unavailable"


class ReadOnlyLink(BankingError):
    """The linked bank's provider lets the assistant read, not move money (Plaid)."""

    code = "read_only_link"


class BillsUnavailable(ReadOnlyLink):
    """The linked bank's provider moves money but cannot pay bills from the chat (Mono: no biller look-up)."""

    code = "bills_unavailable"


class LinkPending(BankingError):
    """The customer opened a provider's page and has not finished there yet."""

    code = "link_pending"


class StorageError(BankingError):
    """The database failed; the customer should try again later."""

    code = "storage_error"


class OutcomeUnknown(StorageError):
    """The database failed mid-confirmation and could not be asked whether the operation ran.

    Unlike a plain StorageError, something may have moved: the customer should check
    before trying again. The next YES finishes or reruns it safely.
    """

    code = "outcome_unknown"


class ConfigError(ValueError):
    """A setting in the environment is unusable; raised before serving anyone."""
