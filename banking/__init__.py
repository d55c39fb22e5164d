"""Plain-Python banking core for the WhatsApp assistant (no Rasa imports here).

Modules: ``service`` (the facade the assistant calls), ``confirmations`` (the
confirmation state machine), ``customers`` (the customer document: controls that
outlive a bank link, the link, the money movement), ``sealing`` and ``crypto``
(what is sealed at rest, and how), ``audit``, ``money`` (naira parsing and
display, integer kobo), ``periods``, ``config``, ``identity``, ``store``,
``providers``/``sandbox`` and ``errors``. Importing the package does no work and
opens no connection; call ``service_from_env()`` when a service is needed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from banking.service import BankingService


def service_from_env(environ: Mapping[str, str] = os.environ) -> BankingService:
    """Build a BankingService from environment variables (see banking.factory)."""
    from banking.factory import service_from_env as build

    return build(environ)
