"""A response Rasa could not fill ("Send *{amount}* … to *{destination}*", with a live Yes) is never
sent: the customer gets a short apology without buttons and the error is logged without customer
data. At start-up a model whose responses are not domain/'s is an ERROR, and production refuses it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any
from unittest.mock import MagicMock

import pytest

from banking.errors import ConfigError
from checks.action_runner import DOMAIN
from checks.whatsapp_fakes import ADA, PHONE_NUMBER_ID, TOKEN, FakeGraphApi
from connectors.whatsapp import WhatsAppInput, WhatsAppOutput
from connectors.whatsapp.graph import GraphApiClient
from connectors.whatsapp.model_domain import (
    check_model_domain,
    project_responses,
    responses_out_of_date,
    unfilled_placeholders,
)
from connectors.whatsapp.texts import say

APOLOGY = say("response_not_shown")

RAW_CONFIRMATION: dict[str, Any] = {
    "text": "Please confirm:\nSend *{amount}* from your *{source}* to *{destination}*.\nReply YES to send.",
    "buttons": [{"title": "Yes", "payload": '/affirm{"op_ref":"{op_ref}"}'},
                {"title": "No", "payload": '/deny{"op_ref":"{op_ref}"}'}],
    "utter_action": "utter_confirm_transfer",
}
FILLED: dict[str, Any] = {
    "text": "Please confirm:\nSend *₦5,000* from your *Savings* to *Chioma Bello*.",
    "buttons": [{"title": "Yes", "payload": '/affirm{"op_ref":"a1b2c3"}'},
                {"title": "No", "payload": '/deny{"op_ref":"a1b2c3"}'}],
}


@pytest.fixture
async def output(graph: FakeGraphApi) -> AsyncIterator[WhatsAppOutput]:
    client = GraphApiClient(graph.api_url, PHONE_NUMBER_ID, TOKEN)
    yield WhatsAppOutput(client)
    await client.close()


def test_placeholders_are_found_in_text_and_button_payloads_but_not_in_json() -> None:
    assert unfilled_placeholders(RAW_CONFIRMATION) == ["amount", "source", "destination", "op_ref"]
    assert unfilled_placeholders({"text": "ok", "buttons": [{"title": "Yes", "payload": "/affirm{{op_ref}}"}]}) \
        == ["op_ref"]
    assert unfilled_placeholders(FILLED) == []
    assert unfilled_placeholders({"text": 'a JSON {"key": 1} and {} and { spaced }'}) == []


async def test_an_unfilled_confirmation_is_never_sent_an_apology_goes_without_buttons(
        output: WhatsAppOutput, graph: FakeGraphApi, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="connectors.whatsapp"):
        await output.send_response(ADA, dict(RAW_CONFIRMATION))
    (sent,) = graph.delivered()
    assert sent["type"] == "text" and sent["text"]["body"] == APOLOGY
    assert "{" not in sent["text"]["body"] and "interactive" not in sent
    (logged,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    line = logged.getMessage()
    assert "utter_confirm_transfer" in line and "amount" in line
    assert ADA not in line and "Chioma" not in line


async def test_a_filled_confirmation_goes_with_its_buttons(output: WhatsAppOutput, graph: FakeGraphApi) -> None:
    await output.send_response(ADA, dict(FILLED))
    (sent,) = graph.delivered()
    assert sent["type"] == "interactive" and "Chioma Bello" in sent["interactive"]["body"]["text"]


def test_a_model_with_domain_s_responses_passes(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        assert check_model_domain(project_responses(), production=True) == []
        assert check_model_domain(None, production=True) == []  # no model loaded: nothing to compare
    assert not caplog.records


def test_a_stale_model_is_an_error_in_development_and_refused_in_production(
        caplog: pytest.LogCaptureFixture) -> None:
    model = project_responses()
    model["utter_confirm_transfer"] = [{"text": "Send *{amount}* to *{recipient_name}*"}]
    del model["utter_payment_done"]
    assert responses_out_of_date(model, project_responses()) == ["utter_confirm_transfer", "utter_payment_done"]
    with caplog.at_level(logging.ERROR, logger="connectors.whatsapp.model_domain"):
        assert check_model_domain(model, production=False) == ["utter_confirm_transfer", "utter_payment_done"]
    assert any("retrain: the model is older than domain/" in r.getMessage() for r in caplog.records)
    with pytest.raises(ConfigError, match="refusing to start in production: retrain: the model is older than"):
        check_model_domain(model, production=True)


def test_project_responses_are_the_domain_files() -> None:
    assert set(project_responses()) == set(DOMAIN["responses"])


async def test_the_channel_compares_the_loaded_model_after_rasa_loads_it(
        monkeypatch: pytest.MonkeyPatch, channel: WhatsAppInput) -> None:
    blueprint = channel.blueprint(MagicMock())
    listeners = [listener for listener, event in ((f[0], f[1]) for f in _listeners(blueprint))
                 if event == "after_server_start" and listener.__name__ == "compare_model_with_domain"]
    (compare,) = listeners
    stale = project_responses()
    del stale["utter_payment_done"]
    app = MagicMock()
    app.ctx.agent.domain.responses = stale
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ConfigError, match="retrain"):
        await compare(app, None)


def _listeners(blueprint: Any) -> list[tuple[Any, str]]:
    """(listener, event) pairs a Sanic 21.12 blueprint holds until it is registered."""
    return [(future.listener, future.event) for future in blueprint._future_listeners]
