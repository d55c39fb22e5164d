"""Starting ``rasa run`` the way the product ships it: only signed WhatsApp webhooks get in.

    python -m connectors.rasa_server --model M --credentials credentials.yml --endpoints endpoints.yml [...]

- **Rasa's HTTP API** (``/conversations/<id>/tracker``, ``/model``, ...) is off. An operator
  turns it on with ``RASA_API_ENABLED=true``, and then it requires ``RASA_API_TOKEN`` (Rasa's
  token auth) or ``RASA_JWT_SECRET`` (JWT, ``RASA_JWT_METHOD``, default HS256); without one
  the start is refused in every environment, and production refuses a placeholder or short
  one. The secret reaches Rasa inside this process, never on a command line another user
  can read in ``ps``.
- **Channels**: every channel in the credentials file must authenticate its requests (the
  WhatsApp channel verifies Meta's signature). The others Rasa offers (``rest``,
  ``socketio``, ``callback``, ...) take the sender id from the request body: production
  refuses them, and elsewhere they are served only on loopback (``--interface 127.0.0.1``),
  for local tools using their own credentials file (``credentials.local.yml``).
- The same rules are checked again inside the server by the WhatsApp channel when it
  starts (``exposure_problems``), so in production a hand-typed ``rasa run`` cannot open
  a side door either.
- The project's changes to Rasa's own behaviour (``connectors/rasa_patches.py``: action-server
  responses validated by a validator built once) are applied here, in-process, before Rasa
  starts.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from banking.config import environment_from_env
from banking.crypto import secret_weakness
from banking.errors import ConfigError

# Channels that prove who sent each request (Meta's X-Hub-Signature-256 for WhatsApp).
AUTHENTICATED_CHANNELS = frozenset({"connectors.whatsapp.WhatsAppInput"})
OWN_CHANNEL_ROUTE = "webhooks/whatsapp"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
MIN_API_SECRET_LENGTH = 32
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})
# Routes that exist only when Rasa's HTTP API is on.
_API_ROUTE_PREFIXES = ("conversations/", "model", "status", "domain", "version")


@dataclass(frozen=True)
class ApiSettings:
    """Whether Rasa's HTTP API is served, and with which secret."""

    enabled: bool = False
    token: str | None = None
    jwt_secret: str | None = None
    jwt_method: str = "HS256"

    def __repr__(self) -> str:  # secrets never reach a log line
        return (f"ApiSettings(enabled={self.enabled}, token={'set' if self.token else None}, "
                f"jwt_secret={'set' if self.jwt_secret else None}, jwt_method={self.jwt_method!r})")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ApiSettings:
        raw = environ.get("RASA_API_ENABLED", "").strip().lower()
        if raw not in _TRUE | _FALSE:
            raise ConfigError(f"RASA_API_ENABLED={raw!r} is not true or false")
        settings = cls(
            enabled=raw in _TRUE,
            token=environ.get("RASA_API_TOKEN", "").strip() or None,
            jwt_secret=environ.get("RASA_JWT_SECRET", "").strip() or None,
            jwt_method=environ.get("RASA_JWT_METHOD", "").strip() or "HS256",
        )
        settings.check(environment_from_env(environ) == "production")
        return settings

    def check(self, production: bool) -> None:
        """An enabled API needs a secret; production needs a real one."""
        if not self.enabled:
            return
        if not (self.token or self.jwt_secret):
            raise ConfigError("RASA_API_ENABLED is on but neither RASA_API_TOKEN nor RASA_JWT_SECRET is set: "
                              "Rasa's HTTP API reads and changes every conversation, so it never runs open")
        if production:
            problems = [f"{name} {weakness}" for name, value in (("RASA_API_TOKEN", self.token),
                                                                  ("RASA_JWT_SECRET", self.jwt_secret))
                        if value and (weakness := secret_weakness(value, MIN_API_SECRET_LENGTH))]
            if problems:
                raise ConfigError("refusing to start in production: " + "; ".join(problems))

    def rasa_arguments(self) -> list[str]:
        """What ``rasa run`` is given for the API: nothing when it is off."""
        if not self.enabled:
            return []
        arguments = ["--enable-api"]
        if self.token:
            arguments += ["--auth-token", self.token]
        if self.jwt_secret:
            arguments += ["--jwt-secret", self.jwt_secret, "--jwt-method", self.jwt_method]
        return arguments


def unauthenticated_channels(credentials: Mapping[str, object] | None) -> list[str]:
    """The channels of a credentials file that would take a sender id on trust."""
    return sorted(name for name in (credentials or {}) if name not in AUTHENTICATED_CHANNELS)


def channel_problems(credentials: Mapping[str, object] | None, interface: str, production: bool) -> list[str]:
    """Why these channels must not be served on ``interface``; empty when they may."""
    others = unauthenticated_channels(credentials)
    if not others:
        return []
    names = ", ".join(others)
    if production:
        return [f"the channels {names} do not authenticate their requests and are never served in production"]
    if interface not in LOOPBACK:
        return [f"the channels {names} do not authenticate their requests; serve them only on loopback "
                f"(--interface 127.0.0.1), not on {interface or '0.0.0.0'}"]
    return []


def exposure_problems(route_paths: Iterable[str], argv: Sequence[str]) -> list[str]:
    """What a running server exposes that production must not: another channel's webhook, or an
    HTTP API started without a secret (``rasa run --enable-api`` with no --auth-token/--jwt-secret)."""
    problems = []
    paths = sorted({path.strip("/") for path in route_paths})
    foreign = [path for path in paths if path.startswith("webhooks/") and not path.startswith(OWN_CHANNEL_ROUTE)]
    if foreign:
        problems.append("unauthenticated channel routes are served: " + ", ".join(foreign[:5]))
    api_on = any(path.startswith(_API_ROUTE_PREFIXES) for path in paths)
    if api_on and not any(flag in argv for flag in ("--auth-token", "--jwt-secret")):
        problems.append("Rasa's HTTP API is on without --auth-token or --jwt-secret")
    return problems


def _parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m connectors.rasa_server", add_help=False)
    parser.add_argument("--credentials", default="credentials.yml")
    parser.add_argument("--interface", "-i", default="0.0.0.0")
    parser.add_argument("--enable-api", action="store_true")
    parser.add_argument("--auth-token")
    parser.add_argument("--jwt-secret")
    return parser.parse_known_args(list(argv))


def rasa_command(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> list[str]:
    """The full ``rasa run`` argument list, after refusing anything that would open a side door."""
    known, _ = _parse(argv)
    if known.auth_token or known.jwt_secret:
        raise ConfigError("pass Rasa's API secret as RASA_API_TOKEN or RASA_JWT_SECRET, not on the command line "
                          "(other users of the machine can read command lines)")
    if known.enable_api:
        raise ConfigError("turn Rasa's HTTP API on with RASA_API_ENABLED=true (and RASA_API_TOKEN), "
                          "not with --enable-api")
    api = ApiSettings.from_env(environ)
    production = environment_from_env(environ) == "production"
    credentials_path = Path(known.credentials)
    try:
        credentials = yaml.safe_load(credentials_path.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise ConfigError(f"cannot read the credentials file {credentials_path}: {error.strerror}") from None
    problems = channel_problems(credentials, known.interface, production)
    if problems:
        raise ConfigError(f"refusing to start with {credentials_path}: " + "; ".join(problems))
    return ["rasa", "run", *argv, *api.rasa_arguments()]


def main(argv: Sequence[str] | None = None) -> None:
    try:
        command = rasa_command(sys.argv[1:] if argv is None else argv)
    except ConfigError as error:
        print(f"rasa_server: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    from rasa.__main__ import main as rasa_main

    from connectors import rasa_patches

    rasa_patches.apply()
    sys.argv = command  # in-process: the API secret never appears on a command line
    rasa_main()


if __name__ == "__main__":
    main()
