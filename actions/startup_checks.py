"""The action server's start-up checks beyond its own authentication (``actions.server_auth``),
refused in production before the first action runs: the bank provider's settings
(``banking.providers.require_provider_settings``) and the support contacts customers are
given (``banking.config.require_support_contacts``). Registered by ``rasa_sdk_plugins``."""

from __future__ import annotations

import pluggy
from sanic import Sanic

from banking.config import Settings, require_support_contacts
from banking.providers import require_provider_settings

hookimpl = pluggy.HookimplMarker("rasa_sdk")


@hookimpl
def attach_sanic_app_extensions(app: Sanic) -> None:
    require_provider_settings()
    require_support_contacts(Settings.from_env())
