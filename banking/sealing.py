"""Which fields of the banking database are sealed, and the one rule for how.

Every sealed field is sealed with ``banking.crypto`` under the context
``field_context(collection, _id, dotted path)`` of the place it is stored, so a
value copied to another record or field does not open, and ``scripts/reencrypt.py``
can re-seal any field without knowing what it holds::

    collection     sealed (dotted paths)
    profiles       link.ledger.<op id>.merchant / .narration / .destination_label
    operations     params.<name>, destination_label, holder_name, result (the receipt, as JSON)
    transactions   merchant, narration
    handoffs       reason
    profiles       link.accounts.<type>.provider_id (Mono or Plaid account id)
    connections    token (sandbox token, Mono account id, Plaid access token)
    bank_links     sender, credential (banking.linking)

The ledger is a mapping keyed by op id rather than a list, so an entry's path (and
with it its context) is known before the entry is written and never moves. What
stays in clear is what queries and atomic checks need and what names no one:
amounts, balances, limits and spent totals (numbers), dates, references, op ids,
and codes such as kind, category, status and account type.
"""

from __future__ import annotations

import logging
from typing import Any

from banking.crypto import CryptoError, Keyring, field_context, is_sealed

logger = logging.getLogger(__name__)

# What a reader sees where a stored text no configured key opens (a lost key, or an edited record).
UNREADABLE = "[unreadable]"


class Sealer:
    """Seals and opens the banking database's sensitive fields under their field context."""

    def __init__(self, keyring: Keyring | None = None) -> None:
        self._keys = keyring  # None: ENCRYPTION_KEY (or a throwaway development key) on first use

    @property
    def keyring(self) -> Keyring:
        if self._keys is None:
            self._keys = Keyring.from_env()
        return self._keys

    def seal(self, collection: str, document_id: str, path: str, text: str | None) -> str | None:
        """The text sealed to its place; None stays None (an absent value names no one)."""
        if text is None:
            return None
        return self.keyring.encrypt_text(text, field_context(collection, document_id, path))

    def seal_json(self, collection: str, document_id: str, path: str, value: Any) -> str:
        return self.keyring.encrypt_json(value, field_context(collection, document_id, path))

    def open(self, collection: str, document_id: str, path: str, value: Any) -> Any:
        """A stored text in clear, for reading; one that will not open reads as UNREADABLE.

        Values stored before the field was sealed are returned as they are.
        """
        if not is_sealed(value):
            return value
        try:
            return self.open_strict(collection, document_id, path, value)
        except CryptoError as error:
            logger.error("a sealed %s field (%s) could not be opened: %s", collection, path.split(".")[-1],
                         type(error).__name__)
            return UNREADABLE

    def open_strict(self, collection: str, document_id: str, path: str, value: Any) -> Any:
        """A stored text in clear, for acting on it: CryptoError when it will not open."""
        if not is_sealed(value):
            return value
        return self.keyring.decrypt_text(value, field_context(collection, document_id, path))

    def open_json(self, collection: str, document_id: str, path: str, value: str) -> Any:
        """A sealed JSON value; CryptoError when it will not open."""
        return self.keyring.decrypt_json(value, field_context(collection, document_id, path))
