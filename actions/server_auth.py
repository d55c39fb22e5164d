"""Who may call the action server, and where it listens.

The action server runs every custom action, confirmations included, on whatever
tracker it is sent; it must only ever hear from our own `rasa run`. So:

- it listens on ``ACTION_SERVER_HOST`` (default 127.0.0.1; a private address when
  Rasa runs on another machine; production refuses a wildcard such as 0.0.0.0);
- every request but ``GET /health`` must carry ``Authorization: Bearer
  <ACTION_SERVER_TOKEN>``, the shared secret Rasa's ``action_endpoint`` sends
  (endpoints.yml); anything else gets 401 before an action is looked at;
- without a token it does not start; production refuses a placeholder or short one.

rasa-sdk applies this through its plugin hook (``rasa_sdk_plugins`` at the project
root registers this module), so plain ``rasa run actions`` gets it too.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

import pluggy
from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse, json

from banking.config import environment_from_env
from banking.crypto import secret_weakness
from banking.errors import ConfigError
from connectors.sanic_guard import close_unread, guard_app

logger = logging.getLogger(__name__)

hookimpl = pluggy.HookimplMarker("rasa_sdk")

DEFAULT_HOST = "127.0.0.1"
MIN_TOKEN_LENGTH = 32
OPEN_PATHS = frozenset({"/health"})
_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "[::]", ""})


def action_server_token(environ: Mapping[str, str] = os.environ) -> str:
    """ACTION_SERVER_TOKEN, the secret Rasa's action_endpoint sends; "" when unset."""
    return environ.get("ACTION_SERVER_TOKEN", "").strip()


@dataclass(frozen=True)
class ActionServerAuth:
    """The action server's listening address and shared secret, read once at start-up."""

    token: str
    host: str = DEFAULT_HOST

    def __repr__(self) -> str:  # the token never reaches a log line
        return f"ActionServerAuth(host={self.host!r}, token=<{len(self.token)} characters>)"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ActionServerAuth:
        token = action_server_token(environ)
        host = environ.get("ACTION_SERVER_HOST", "").strip() or DEFAULT_HOST
        if not token:
            raise ConfigError(
                "ACTION_SERVER_TOKEN is missing: the action server runs nothing without the secret that "
                "Rasa's action_endpoint sends (set the same value for both processes; `make serve` does)")
        if environment_from_env(environ) == "production":
            problems = []
            weakness = secret_weakness(token, MIN_TOKEN_LENGTH)
            if weakness:
                problems.append(f"ACTION_SERVER_TOKEN {weakness}")
            if host in _WILDCARD_HOSTS:
                problems.append(f"ACTION_SERVER_HOST={host!r} listens on every interface; "
                                "use 127.0.0.1 or a private address")
            if problems:
                raise ConfigError("refusing to start in production: " + "; ".join(problems))
        return cls(token=token, host=host)

    def allows(self, request: Request) -> bool:
        """True for the health check and for requests bearing the token (constant-time compare)."""
        if request.path in OPEN_PATHS and request.method in ("GET", "HEAD"):
            return True
        return is_valid_bearer(self.token, request.headers.get("Authorization"))


def is_valid_bearer(token: str, header: str | None) -> bool:
    """Whether an ``Authorization`` header is exactly ``Bearer <token>``."""
    if not header or not token:
        return False
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


def protect(app: Sanic, auth: ActionServerAuth) -> None:
    """Answer 401 to every request without the token, before any route runs and without
    reading its body (a stranger's body is never parsed, decompressed or drained)."""
    guard_app(app)

    @app.signal("http.routing.before")
    async def skip_unauthorised_body(request: Request, **_: object) -> None:
        if not auth.allows(request):
            close_unread(request)

    @app.middleware("request")
    async def require_token(request: Request) -> HTTPResponse | None:
        if auth.allows(request):
            return None
        logger.warning("refused an action server request without a valid token (%s %s)",
                       request.method, request.path)
        return json({"error": "unauthorised"}, status=401)


@hookimpl
def attach_sanic_app_extensions(app: Sanic) -> None:
    """rasa-sdk's start-up hook: refuse to start without a token, bind, and check every request.

    rasa-sdk reads ``SANIC_HOST`` right after this hook to choose the address it binds,
    so the address is set here from ``ACTION_SERVER_HOST``.
    """
    auth = ActionServerAuth.from_env()
    os.environ["SANIC_HOST"] = auth.host
    protect(app, auth)
    logger.info("action server: listening on %s, every call needs ACTION_SERVER_TOKEN", auth.host)
