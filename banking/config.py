"""Settings read once from the environment, validated before anyone is served."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from banking.errors import ConfigError

__all__ = [
    "DEVELOPMENT_SALT",
    "KNOWN_PROVIDERS",
    "WHATSAPP_VARIABLES",
    "ConfigError",
    "Settings",
    "bank_link_redirect_url_from_env",
    "encryption_key_from_env",
    "environment_from_env",
    "mongodb_uri_from_env",
    "old_encryption_keys_from_env",
    "require_support_contacts",
    "support_contact_problems",
    "user_id_salt_from_env",
    "whatsapp_settings_from_env",
]

DEVELOPMENT_SALT = "development-only-salt-do-not-use-in-production"
KNOWN_PROVIDERS = ("sandbox", "mono", "plaid")
# credentials.yml key -> environment variable of the WhatsApp channel (connectors.whatsapp)
WHATSAPP_VARIABLES = {
    "api_url": "WHATSAPP_API_URL",
    "phone_number_id": "WHATSAPP_PHONE_NUMBER_ID",
    "api_token": "WHATSAPP_API_TOKEN",
    "verify_token": "WHATSAPP_VERIFY_TOKEN",
    "app_secret": "WHATSAPP_APP_SECRET",
}
_ENVIRONMENTS = {"production": "production", "prod": "production",
                 "development": "development", "dev": "development", "local": "development",
                 "test": "development", "sandbox": "development"}


@dataclass(frozen=True)
class Settings:
    """Everything the banking core needs from the deployment."""

    mongodb_uri: str | None = None
    bank_provider: str = "sandbox"
    confirmation_ttl_seconds: int = 300
    daily_transfer_limit_kobo: int = 50_000_000  # ₦500,000
    user_id_salt: str = DEVELOPMENT_SALT
    # Placeholders for development: production refuses to start with them (require_support_contacts).
    support_phone: str = "+234 1 700 0000"
    support_email: str = "support@example-bank.ng"
    support_hours: str = "24/7"
    environment: str = "development"  # "production" refuses missing or default secrets
    conversation_retention_days: int | None = None  # None keeps conversations until deleted
    # Unfreezing and raising the daily limit take effect this many hours after the YES, so a
    # stolen phone cannot undo a freeze or lift the limit and empty the account at once.
    security_cooling_off_hours: int = 24
    # Mono DirectPay collects a payment into the operator's own Mono account; no payout to the
    # recipient exists yet, so money moves through Mono only when this is on (the fake-Mono demo
    # and tests), and production refuses to start with it (banking.providers).
    mono_directpay: bool = False

    @property
    def is_production(self) -> bool:
        """True when ENVIRONMENT=production: secrets must be real and storage persistent."""
        return self.environment == "production"

    @property
    def moves_money(self) -> bool:
        """Whether money can leave a linked account from the chat in this deployment: the sandbox, or
        Mono with DirectPay on. Plaid, and Mono without DirectPay, only read (BankingService.provider_moves_money
        says the same of the provider the service was built with)."""
        return self.bank_provider == "sandbox" or (self.bank_provider == "mono" and self.mono_directpay)

    @property
    def cooling_off(self) -> timedelta:
        """How long a confirmed unfreeze or limit raise waits before it takes effect."""
        return timedelta(hours=self.security_cooling_off_hours)

    @property
    def is_development(self) -> bool:
        """True when no USER_ID_SALT was given, so user keys are not secret."""
        return self.user_id_salt == DEVELOPMENT_SALT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Build settings from environment variables; empty values count as unset."""
        defaults = cls()
        return cls(
            mongodb_uri=mongodb_uri_from_env(environ),
            bank_provider=_provider(environ),
            confirmation_ttl_seconds=_positive_int(
                environ, "CONFIRMATION_TTL_SECONDS", defaults.confirmation_ttl_seconds),
            daily_transfer_limit_kobo=_naira_as_kobo(
                environ, "DAILY_TRANSFER_LIMIT", defaults.daily_transfer_limit_kobo),
            user_id_salt=user_id_salt_from_env(environ) or DEVELOPMENT_SALT,
            support_phone=_text(environ, "SUPPORT_PHONE") or defaults.support_phone,
            support_email=_text(environ, "SUPPORT_EMAIL") or defaults.support_email,
            support_hours=_text(environ, "SUPPORT_HOURS") or defaults.support_hours,
            environment=environment_from_env(environ),
            conversation_retention_days=_optional_positive_int(environ, "CONVERSATION_RETENTION_DAYS"),
            security_cooling_off_hours=_positive_int(
                environ, "SECURITY_COOLING_OFF_HOURS", defaults.security_cooling_off_hours),
            mono_directpay=_switch(environ, "MONO_DIRECTPAY"),
        )


def environment_from_env(environ: Mapping[str, str] = os.environ) -> str:
    """ENVIRONMENT as "production" or "development"; an unknown value is a mistake, not development."""
    raw = (_text(environ, "ENVIRONMENT") or "development").lower()
    if raw not in _ENVIRONMENTS:
        raise ConfigError(f"ENVIRONMENT={raw!r} is unknown; use production or development")
    return _ENVIRONMENTS[raw]


def support_contact_problems(settings: Settings) -> list[str]:
    """Support contacts still at their placeholders: a customer sent there in an emergency reaches nobody."""
    defaults = Settings()
    problems = []
    if settings.support_phone == defaults.support_phone:
        problems.append("SUPPORT_PHONE is the placeholder number")
    domain = settings.support_email.rpartition("@")[2].lower()
    if settings.support_email == defaults.support_email or any(
            label.startswith("example") for label in domain.split(".")):
        problems.append("SUPPORT_EMAIL is a placeholder address")
    return problems


def require_support_contacts(settings: Settings) -> None:
    """With ENVIRONMENT=production, refuse to start while customers would be given placeholder contacts."""
    if not settings.is_production:
        return
    problems = support_contact_problems(settings)
    if problems:
        raise ConfigError("refusing to start in production: " + "; ".join(problems)
                          + "; set the bank's real SUPPORT_PHONE and SUPPORT_EMAIL")


# Settings that several modules need (the store, the channel, key and salt checks) are read
# here and nowhere else; each returns None when the variable is unset or blank.


def mongodb_uri_from_env(environ: Mapping[str, str] = os.environ) -> str | None:
    """MONGODB_URI; None means the in-process database (data lost on exit)."""
    return _text(environ, "MONGODB_URI")


def user_id_salt_from_env(environ: Mapping[str, str] = os.environ) -> str | None:
    """USER_ID_SALT as given: None tells "unset" apart from the development salt."""
    return _text(environ, "USER_ID_SALT")


def encryption_key_from_env(environ: Mapping[str, str] = os.environ) -> str | None:
    """ENCRYPTION_KEY, unparsed (``banking.crypto.parse_key`` checks it)."""
    return _text(environ, "ENCRYPTION_KEY")


def old_encryption_keys_from_env(environ: Mapping[str, str] = os.environ) -> str:
    """ENCRYPTION_OLD_KEYS, unparsed: keys still accepted for decryption while data is re-encrypted."""
    return _text(environ, "ENCRYPTION_OLD_KEYS") or ""


def bank_link_redirect_url_from_env(environ: Mapping[str, str] = os.environ) -> str | None:
    """BANK_LINK_REDIRECT_URL: where a hosted bank-link page (Mono's, Plaid's) sends the customer back to."""
    return _text(environ, "BANK_LINK_REDIRECT_URL")


def whatsapp_settings_from_env(environ: Mapping[str, str] = os.environ) -> dict[str, str | None]:
    """The WhatsApp channel's settings by credentials.yml key, as the channel and the production check see them."""
    return {key: _text(environ, name) for key, name in WHATSAPP_VARIABLES.items()}


def _text(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _provider(environ: Mapping[str, str]) -> str:
    value = (_text(environ, "BANK_PROVIDER") or "sandbox").lower()
    if value not in KNOWN_PROVIDERS:
        raise ConfigError(f"BANK_PROVIDER={value!r} is unknown; use one of {', '.join(KNOWN_PROVIDERS)}")
    return value


def _switch(environ: Mapping[str, str], name: str) -> bool:
    """An on/off setting, off when unset; anything but on/off (true/false, 1/0, yes/no) is a mistake."""
    raw = (_text(environ, name) or "off").lower()
    if raw in ("on", "true", "1", "yes"):
        return True
    if raw in ("off", "false", "0", "no"):
        return False
    raise ConfigError(f"{name}={raw!r} is neither on nor off")


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = _text(environ, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be greater than zero")
    return value


def _optional_positive_int(environ: Mapping[str, str], name: str) -> int | None:
    if _text(environ, name) is None:
        return None
    return _positive_int(environ, name, 0)


def _naira_as_kobo(environ: Mapping[str, str], name: str, default: int) -> int:
    """Read a naira amount (commas allowed) and return kobo, never via float."""
    raw = _text(environ, name)
    if raw is None:
        return default
    try:
        naira = Decimal(raw.replace(",", "").lstrip("₦"))
    except InvalidOperation:
        raise ConfigError(f"{name}={raw!r} is not a naira amount") from None
    kobo = naira * 100
    if not naira.is_finite() or kobo <= 0 or kobo != kobo.to_integral_value():
        raise ConfigError(f"{name}={raw!r} must be a positive naira amount")
    return int(kobo)
