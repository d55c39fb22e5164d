"""The channel's settings, read once at start-up from the environment and credentials.yml.

``WhatsAppConfig.from_credentials`` names every missing variable, and with
ENVIRONMENT=production every missing or default secret, before anything starts
(banking.crypto.require_production_secrets).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from assistant_llm.charts import ChartStore
from banking.config import (
    DEVELOPMENT_SALT,
    WHATSAPP_VARIABLES,
    ConfigError,
    mongodb_uri_from_env,
    user_id_salt_from_env,
    whatsapp_settings_from_env,
)
from banking.crypto import require_production_secrets
from connectors.whatsapp.ratelimit import RateLimitConfig

__all__ = ["DEFAULT_API_URL", "WhatsAppConfig", "WhatsAppConfigError"]

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://graph.facebook.com/v25.0"

_SETTINGS = WHATSAPP_VARIABLES  # credentials.yml key -> environment variable
_REQUIRED = ("phone_number_id", "api_token", "verify_token", "app_secret")
_OTHER_CREDENTIALS = ("transcriber",)


class WhatsAppConfigError(ConfigError):
    """A WhatsApp setting is missing or unusable; the message names the variable."""


@dataclass(frozen=True)
class WhatsAppConfig:
    """Everything the channel needs from the deployment, read once."""

    phone_number_id: str
    api_token: str = field(repr=False)
    verify_token: str = field(repr=False)
    app_secret: str = field(repr=False)
    api_url: str = DEFAULT_API_URL
    mongodb_uri: str | None = field(default=None, repr=False)
    user_id_salt: str = field(default=DEVELOPMENT_SALT, repr=False)
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)
    charts: ChartStore = field(default_factory=lambda: ChartStore.from_env({}))

    @property
    def uses_development_salt(self) -> bool:
        return self.user_id_salt == DEVELOPMENT_SALT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> WhatsAppConfig:
        """WHATSAPP_*, MONGODB_URI, USER_ID_SALT, RATE_LIMIT_* and CHART_*; empty values count as unset."""
        return cls.from_credentials(None, environ)

    @classmethod
    def from_credentials(
        cls, credentials: Mapping[str, Any] | None, environ: Mapping[str, str] = os.environ
    ) -> WhatsAppConfig:
        """The environment, with non-empty credentials.yml keys taking precedence.

        With ENVIRONMENT=production, every missing or default secret is named at once
        (the WhatsApp ones as the channel would use them) and nothing starts.
        """
        credentials = credentials or {}
        unknown = sorted(str(key) for key in credentials if key not in _SETTINGS and key not in _OTHER_CREDENTIALS)
        if unknown:
            logger.warning("Ignoring unknown WhatsApp credentials keys: %s", ", ".join(unknown))
        values = whatsapp_settings_from_env(environ)
        for key in _SETTINGS:
            value = _setting(credentials.get(key))
            if value:
                values[key] = value
        effective = dict(environ)
        effective.update({_SETTINGS[key]: value for key, value in values.items() if value})
        try:
            require_production_secrets(effective)
        except ConfigError as error:
            raise WhatsAppConfigError(str(error)) from None
        required = {key: value for key in _REQUIRED if (value := values[key])}
        missing = [_SETTINGS[key] for key in _REQUIRED if key not in required]
        if missing:
            raise WhatsAppConfigError(
                f"WhatsApp channel is missing {', '.join(missing)}: set the environment variable(s) "
                "or the matching key(s) in credentials.yml"
            )
        api_url = (values["api_url"] or DEFAULT_API_URL).rstrip("/")
        if not api_url.startswith(("https://", "http://")):
            raise WhatsAppConfigError(f"WHATSAPP_API_URL must be an http(s) URL, not {api_url!r}")
        return cls(
            phone_number_id=required["phone_number_id"],
            api_token=required["api_token"],
            verify_token=required["verify_token"],
            app_secret=required["app_secret"],
            api_url=api_url,
            mongodb_uri=mongodb_uri_from_env(environ),
            user_id_salt=user_id_salt_from_env(environ) or DEVELOPMENT_SALT,
            rate_limit=RateLimitConfig.from_env(environ),
            charts=ChartStore.from_env(environ),
        )


def _setting(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip() if isinstance(value, (str, int)) else ""
    return text or None
