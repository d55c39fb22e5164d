"""The action server's start-up checks beyond its own authentication (``actions.server_auth``):
the bank provider's settings, refused in production before the first action runs
(``banking.providers.require_provider_settings``). Registered by ``rasa_sdk_plugins``."""

from __future__ import annotations

import pluggy
from sanic import Sanic

from banking.providers import require_provider_settings

hookimpl = pluggy.HookimplMarker("rasa_sdk")


@hookimpl  # type: ignore[misc]
def attach_sanic_app_extensions(app: Sanic) -> None:
    require_provider_settings()
