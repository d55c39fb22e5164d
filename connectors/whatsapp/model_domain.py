"""The channel never lets a half-filled response reach a customer, and says when the model is stale.

Rasa fills a response's ``{name}`` placeholders from the action's values and the slots; when the
trained model's domain and the action server disagree (a response renamed its variables, the model
was not retrained), Rasa sends the template raw: "Send *{amount}* … to *{destination}*" with a live
Yes button. That fails open, so the channel fails closed:

    unfilled_placeholders(message)    the ``{name}`` placeholders left in a message's text and buttons
    texts 'response_not_shown'        sent instead, without buttons (the error is logged, no customer data)
    responses_out_of_date(model, project)  response names whose text the model has differently
    check_model_domain(domain, production) at start-up: an ERROR log in development, a refusal in production
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from banking.errors import ConfigError

logger = logging.getLogger(__name__)

PROJECT_DOMAIN = Path(__file__).resolve().parents[2] / "domain"  # from connectors/whatsapp/
# Rasa's own placeholder form (rasa.core.nlg.interpolator): {name}; JSON in button payloads
# ('/affirm{"op_ref":"…"}') has a quote after the brace and is not one.
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def unfilled_placeholders(message: Mapping[str, Any]) -> list[str]:
    """The placeholder names still in a bot message's text, button titles and payloads, in order."""
    parts: list[Any] = [message.get("text")]
    for key in ("buttons", "quick_replies"):
        for button in message.get(key) or ():
            if isinstance(button, Mapping):
                parts += [button.get("title"), button.get("payload")]
    found: list[str] = []
    for part in parts:
        if isinstance(part, str):
            found += [name for name in _PLACEHOLDER.findall(part) if name not in found]
    return found


def project_responses(directory: Path = PROJECT_DOMAIN) -> dict[str, Any]:
    """The responses of the project's domain/ files, merged as Rasa merges them (tests/domain checks
    that Rasa's Domain.load gives the same responses)."""
    responses: dict[str, Any] = {}
    for path in sorted(directory.glob("*.yml")):
        responses.update((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("responses") or {})
    return responses


def responses_out_of_date(model: Mapping[str, Any], project: Mapping[str, Any]) -> list[str]:
    """Response names the model lacks, has in excess, or words differently from domain/."""
    return sorted(name for name in set(model) | set(project) if model.get(name) != project.get(name))


def check_model_domain(model_responses: Mapping[str, Any] | None, production: bool,
                       directory: Path = PROJECT_DOMAIN) -> list[str]:
    """Compare the loaded model's responses with domain/: in production a difference refuses the start
    (ConfigError), elsewhere it is logged as an ERROR. The names that differ."""
    if model_responses is None:
        return []
    stale = responses_out_of_date(model_responses, project_responses(directory))
    if not stale:
        return []
    shown = ", ".join(stale[:10]) + (f" and {len(stale) - 10} more" if len(stale) > 10 else "")
    problem = f"retrain: the model is older than domain/ ({len(stale)} responses differ: {shown})"
    if production:
        raise ConfigError("refusing to start in production: " + problem)
    logger.error("%s; customers may get messages the actions cannot fill", problem)
    return stale
