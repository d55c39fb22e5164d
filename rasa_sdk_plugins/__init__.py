"""rasa-sdk's plugin package (rasa_sdk.plugin imports ``rasa_sdk_plugins`` when it exists).

Registers the action server's authentication and listening address
(``actions.server_auth``), so every ``rasa run actions`` started from this project
refuses calls that do not carry ACTION_SERVER_TOKEN, the start-up checks
(``actions.startup_checks``), so production refuses unsafe bank provider settings and
placeholder support contacts before any action runs,
and the route the channel hands provider webhooks to (``actions.bank_webhooks``); numpy's BLAS
keeps to one thread (``actions.blas_threads``).
"""

from __future__ import annotations

import pluggy


def init_hooks(manager: pluggy.PluginManager) -> None:
    from actions import bank_webhooks, blas_threads, request_ids, server_auth, startup_checks

    manager.register(server_auth)
    manager.register(startup_checks)  # production refuses unsafe provider settings and support contacts
    manager.register(request_ids)  # X-Request-ID from Rasa on every log line
    manager.register(bank_webhooks)  # provider webhooks the channel hands over, handled beside the bank records
    manager.register(blas_threads)  # a spinning BLAS thread doubled what a spending chart costs
