"""The fake Graph API over real HTTP: what the bot calls, and how it answers (like Meta)."""

from __future__ import annotations

import hashlib
import logging

import aiohttp
import pytest

from tests.sandbox.sandbox_fakes import USER, EventStream, Stack, eventually


def auth(stack: Stack, token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.config.access_token if token is None else token}"}


def messages_url(stack: Stack, phone_number_id: str | None = None) -> str:
    return f"{stack.config.graph_api_url}/{phone_number_id or stack.config.phone_number_id}/messages"


TEXT = {
    "messaging_product": "whatsapp",
    "recipient_type": "individual",
    "to": USER,
    "type": "text",
    "text": {"body": "Your *Savings* balance is ₦125,450.00"},
}


async def test_graph_api_url_is_the_one_given_to_the_bot(stack: Stack) -> None:
    assert stack.config.graph_api_url == f"http://127.0.0.1:{stack.config.port}/v25.0"
    assert stack.config.bot_environment()["WHATSAPP_API_URL"] == stack.config.graph_api_url


async def test_a_bot_message_is_recorded_and_answered_with_a_wamid(stack: Stack) -> None:
    async with stack.http.post(messages_url(stack), json=TEXT, headers=auth(stack)) as response:
        answer = await response.json()

    assert response.status == 200
    (message,) = answer["messages"]
    assert message["id"].startswith("wamid.")
    assert answer == {
        "messaging_product": "whatsapp",
        "contacts": [{"input": USER, "wa_id": USER}],
        "messages": [{"id": message["id"]}],
    }
    assert stack.sandbox.graph_messages == [{"id": message["id"], **TEXT}]
    (bubble,) = [m for m in stack.sandbox.threads[USER].messages if m.sender == "bot"]
    assert bubble.id == message["id"] and bubble.content["text"]["body"].startswith("Your *Savings*")


@pytest.mark.parametrize("token", ["wrong-token", ""])
async def test_a_wrong_or_missing_token_gets_metas_401(stack: Stack, token: str) -> None:
    headers = auth(stack, token) if token else {}
    async with stack.http.post(messages_url(stack), json=TEXT, headers=headers) as response:
        answer = await response.json()

    assert response.status == 401
    error = answer["error"]
    assert error["type"] == "OAuthException" and error["code"] == 190
    assert error["message"].startswith("Invalid OAuth access token") and error["fbtrace_id"]
    assert stack.sandbox.graph_messages == []


async def test_an_unknown_phone_number_id_is_refused(stack: Stack) -> None:
    async with stack.http.post(messages_url(stack, "999999999999999"), json=TEXT, headers=auth(stack)) as response:
        answer = await response.json()

    assert response.status == 400
    assert answer["error"]["code"] == 100 and answer["error"]["error_subcode"] == 33
    assert "999999999999999" in answer["error"]["message"]


async def test_a_malformed_body_is_refused_with_details(stack: Stack) -> None:
    body = {
        "messaging_product": "whatsapp",
        "to": USER,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Pick"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "x", "title": "T" * 21}}]},
        },
    }
    async with stack.http.post(messages_url(stack), json=body, headers=auth(stack)) as response:
        answer = await response.json()

    assert response.status == 400
    assert answer["error"]["code"] == 131009
    assert "title" in answer["error"]["error_data"]["details"]
    async with stack.http.post(messages_url(stack), data=b"{not json", headers=auth(stack)) as response:
        assert response.status == 400 and (await response.json())["error"]["code"] == 100


async def test_read_receipt_with_typing_turns_ticks_blue_and_shows_typing(stack: Stack) -> None:
    async with EventStream(stack.http, f"{stack.base}/api/events") as events:
        first = await stack.page_send({"type": "text", "text": "hi"})
        second = await stack.page_send({"type": "text", "text": "my balance"})
        body = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": second["id"],
            "typing_indicator": {"type": "text"},
        }
        async with stack.http.post(messages_url(stack), json=body, headers=auth(stack)) as response:
            assert response.status == 200
            assert await response.json() == {"success": True}

        for message in (first, second):  # reading a message reads the ones before it too
            await events.wait_for("status", lambda d, m=message: d["id"] == m["id"] and d["status"] == "read")
        await events.wait_for("typing", lambda d: d == {"wa_id": USER, "typing": True})
        assert stack.sandbox.read_receipts == [{"message_id": second["id"], "typing_indicator": True}]

        await stack.bot.send_text(USER, "One moment")  # a message ends the typing indicator
        await events.wait_for("typing", lambda d: d == {"wa_id": USER, "typing": False})


async def test_read_receipt_for_an_unknown_message_is_refused(stack: Stack) -> None:
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.NOPE"}
    async with stack.http.post(messages_url(stack), json=body, headers=auth(stack)) as response:
        answer = await response.json()

    assert response.status == 400 and "message_id" in answer["error"]["error_data"]["details"]


async def test_scripted_faults_answer_in_turn_and_every_call_is_recorded(stack: Stack) -> None:
    graph = stack.running.graph
    graph.fail_next(1, 503, retry_after="2")
    graph.refuse_next(131026, "Message undeliverable")
    graph.stall_next(0.2)
    answers = []
    for _ in range(4):
        async with stack.http.post(messages_url(stack), json=TEXT, headers=auth(stack)) as response:
            answers.append((response.status, response.headers.get("Retry-After"), await response.json()))

    (failed, retry_after, failure), (refused, _, refusal), (stalled, _, _), (sent, _, _) = answers
    assert (failed, retry_after) == (503, "2") and failure["error"]["code"] == 2
    assert refused == 400 and refusal["error"]["code"] == 131026
    assert refusal["error"]["message"] == "Message undeliverable" and refusal["error"]["fbtrace_id"]
    assert stalled == sent == 200 and len(stack.sandbox.graph_messages) == 2
    calls = graph.of_kind("message")
    assert [call.status for call in calls] == [503, 400, 200, 200] and calls[0].json == TEXT
    assert calls[3].at - calls[2].at >= 0.2  # the next call waited for the stalled answer


async def test_media_added_for_download_is_looked_up_and_fetched(stack: Stack) -> None:
    stack.running.graph.add_media("1234567890", b"OggS voice", "audio/ogg; codecs=opus")
    async with stack.http.get(f"{stack.config.graph_api_url}/1234567890", headers=auth(stack)) as response:
        info = await response.json()
    assert info["mime_type"] == "audio/ogg; codecs=opus" and info["file_size"] == len(b"OggS voice")
    async with stack.http.get(info["url"], headers=auth(stack)) as response:
        assert response.status == 200 and await response.read() == b"OggS voice"
    assert [call.kind for call in stack.running.graph.requests] == ["lookup", "download"]


async def test_voice_note_media_downloads_like_metas(stack: Stack) -> None:
    await stack.page_send({"type": "voice"})
    (audio,) = await eventually(lambda: [m for m in stack.bot.messages() if m["type"] == "audio"])
    media_id = audio["audio"]["id"]

    async with stack.http.get(f"{stack.config.graph_api_url}/{media_id}", headers=auth(stack)) as response:
        info = await response.json()
    assert response.status == 200
    assert info["id"] == media_id and info["messaging_product"] == "whatsapp"
    assert info["mime_type"] == audio["audio"]["mime_type"] == "audio/wav"

    async with stack.http.get(info["url"], headers=auth(stack)) as response:
        data = await response.read()
    assert response.status == 200 and data[:4] == b"RIFF"
    assert hashlib.sha256(data).hexdigest() == info["sha256"] and len(data) == info["file_size"]

    async with stack.http.get(info["url"]) as response:  # the download URL wants the token too
        assert response.status == 401
    async with stack.http.get(f"{stack.config.graph_api_url}/{media_id}", headers=auth(stack, "nope")) as response:
        assert response.status == 401
    async with stack.http.get(f"{stack.config.graph_api_url}/424242", headers=auth(stack)) as response:
        assert response.status == 400


async def test_uploaded_media_can_be_sent_by_id(stack: Stack) -> None:
    form = aiohttp.FormData()
    form.add_field("messaging_product", "whatsapp")
    form.add_field("type", "application/pdf")
    form.add_field("file", b"%PDF-1.4 receipt", filename="receipt.pdf", content_type="application/pdf")
    async with stack.http.post(
        f"{stack.config.graph_api_url}/{stack.config.phone_number_id}/media", data=form, headers=auth(stack)
    ) as response:
        uploaded = await response.json()
    assert response.status == 200 and uploaded["id"].isdigit()

    await stack.bot.graph(
        {
            "messaging_product": "whatsapp",
            "to": USER,
            "type": "document",
            "document": {"id": uploaded["id"], "filename": "receipt.pdf"},
        }
    )
    async with stack.http.get(f"{stack.base}/api/media/{uploaded['id']}") as response:
        assert await response.read() == b"%PDF-1.4 receipt"


async def test_logs_carry_no_phone_numbers_or_tokens(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="sandbox")
    sent = await stack.page_send({"type": "text", "text": "hello"})
    await eventually(lambda: stack.bot.messages())
    await stack.bot.mark_read(sent["id"])
    await stack.bot.send_text(USER, "Hi Ada")
    async with stack.http.post(messages_url(stack), json=TEXT, headers=auth(stack, "leaked?")) as response:
        assert response.status == 401
    await eventually(lambda: len(stack.bot.statuses()) >= 2)

    text = caplog.text
    assert "user 1" in text  # users appear by label
    for secret in (USER, stack.config.access_token, stack.config.app_secret, "leaked?"):
        assert secret not in text
