"""Webhooks from the sandbox to a fake bot over real HTTP: what the page sends arrives as
Meta's signed payload; the bot's messages get sent/delivered/read statuses back."""

from __future__ import annotations

import hashlib
import hmac
import json

from tests.sandbox.sandbox_fakes import USER, EventStream, FakeBot, Stack, eventually, start_stack, stop_stack


async def test_a_typed_message_reaches_the_bot_signed_and_in_metas_shape(stack: Stack) -> None:
    sent = await stack.page_send({"type": "text", "text": "Wetin be my balance?"})

    await eventually(lambda: stack.bot.payloads, what="the webhook")
    headers, body = stack.bot.raw[0]
    own = hmac.new(stack.config.app_secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Hub-Signature-256"] == f"sha256={own}"
    assert headers["Content-Type"] == "application/json"
    assert stack.bot.bad_signatures == 0

    payload = json.loads(body)
    assert payload["object"] == "whatsapp_business_account"
    (entry,) = payload["entry"]
    assert entry["id"] == stack.config.business_account_id
    (change,) = entry["changes"]
    assert change["field"] == "messages"
    value = change["value"]
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"] == {
        "display_phone_number": stack.config.display_phone_number,
        "phone_number_id": stack.config.phone_number_id,
    }
    assert value["contacts"] == [{"profile": {"name": "Ada Okafor"}, "wa_id": USER}]
    (message,) = value["messages"]
    assert message == {
        "from": USER,
        "id": sent["id"],
        "timestamp": message["timestamp"],
        "type": "text",
        "text": {"body": "Wetin be my balance?"},
    }
    assert message["id"].startswith("wamid.") and message["timestamp"].isdigit()
    await eventually(lambda: stack.sandbox.threads[USER].messages[0].status == "delivered")


async def test_non_ascii_text_is_signed_over_the_exact_bytes_sent(stack: Stack) -> None:
    await stack.page_send({"type": "text", "text": "Send ₦5,000 to Ọlá 🙏"})

    await eventually(lambda: stack.bot.payloads)
    _, body = stack.bot.raw[0]
    assert b"\\u20a6" in body  # escaped like Meta's webhooks
    assert json.loads(body)["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"].startswith("Send ₦")


async def test_tapping_a_reply_button_sends_metas_button_reply(stack: Stack) -> None:
    wamid = await stack.bot.send_buttons(USER, "Send ₦5,000 to Tunde?", [("affirm", "Yes"), ("deny", "No")])

    await stack.page_send({"type": "button_reply", "context_id": wamid, "id": "deny"})

    (message,) = await eventually(lambda: stack.bot.messages())
    assert message["type"] == "interactive"
    assert message["context"] == {"from": stack.config.display_phone_number, "id": wamid}
    assert message["interactive"] == {"type": "button_reply", "button_reply": {"id": "deny", "title": "No"}}


async def test_choosing_a_list_row_sends_metas_list_reply(stack: Stack) -> None:
    wamid = await stack.bot.send_list(
        USER,
        "Which account?",
        "Choose account",
        [("acct_checking", "Checking", "₦45,320.50"), ("acct_savings", "Savings", "₦125,450.00")],
    )

    await stack.page_send({"type": "list_reply", "context_id": wamid, "id": "acct_savings"})

    (message,) = await eventually(lambda: stack.bot.messages())
    assert message["context"]["id"] == wamid
    assert message["interactive"] == {
        "type": "list_reply",
        "list_reply": {"id": "acct_savings", "title": "Savings", "description": "₦125,450.00"},
    }


async def test_replies_must_name_a_real_button_or_row(stack: Stack) -> None:
    wamid = await stack.bot.send_buttons(USER, "Sure?", [("affirm", "Yes")])
    url = f"{stack.base}/api/users/{USER}/messages"
    for body in (
        {"type": "button_reply", "context_id": wamid, "id": "made_up"},
        {"type": "list_reply", "context_id": wamid, "id": "affirm"},
        {"type": "button_reply", "context_id": "wamid.unknown", "id": "affirm"},
        {"type": "text", "text": "   "},
        {"type": "sticker"},
    ):
        async with stack.http.post(url, json=body) as response:
            assert response.status == 400, body
            assert (await response.json())["error"]
    assert stack.bot.payloads == []


async def test_bot_messages_get_sent_delivered_and_read_statuses(stack: Stack) -> None:
    wamid = await stack.bot.send_text(USER, "Hello Ada")

    await eventually(lambda: [s["status"] for s in stack.bot.statuses()] == ["sent", "delivered"])
    assert await stack.page_seen() == 1  # the page showed the message
    await eventually(lambda: [s["status"] for s in stack.bot.statuses()] == ["sent", "delivered", "read"])

    for status in stack.bot.statuses():
        assert status["id"] == wamid and status["recipient_id"] == USER and status["timestamp"].isdigit()
    assert stack.bot.bad_signatures == 0
    for payload in stack.bot.payloads:
        value = payload["entry"][0]["changes"][0]["value"]
        assert value["metadata"]["phone_number_id"] == stack.config.phone_number_id
    assert await stack.page_seen() == 0  # read once only


async def test_outbound_messages_reach_the_page_event_stream(stack: Stack) -> None:
    async with EventStream(stack.http, f"{stack.base}/api/events") as events:
        snapshot = await events.wait_for("snapshot")
        assert [u["wa_id"] for u in snapshot["users"]][:2] == [USER, "2348000000002"]
        assert snapshot["business"]["phone_number_id"] == stack.config.phone_number_id

        wamid = await stack.bot.send_buttons(USER, "Confirm transfer?", [("affirm", "Yes"), ("deny", "No")])

        message = await events.wait_for("message", lambda d: d["id"] == wamid)
        assert message["from"] == "bot" and message["wa_id"] == USER and message["type"] == "interactive"
        assert message["content"]["interactive"]["action"]["buttons"][0]["reply"] == {"id": "affirm", "title": "Yes"}

        sent = await stack.page_send({"type": "text", "text": "yes"})
        await events.wait_for("message", lambda d: d["id"] == sent["id"] and d["from"] == "user")
        await events.wait_for("status", lambda d: d["id"] == sent["id"] and d["status"] == "delivered")


async def test_a_new_number_gets_its_own_thread(stack: Stack) -> None:
    async with stack.http.post(f"{stack.base}/api/users", json={"wa_id": "+1 555 010 7777", "name": "Sam"}) as r:
        assert r.status == 200 and await r.json() == {"wa_id": "15550107777", "name": "Sam"}
    await stack.page_send({"type": "text", "text": "hi"}, wa_id="15550107777")
    (message,) = await eventually(lambda: stack.bot.messages())
    assert message["from"] == "15550107777"
    assert stack.bot.payloads[0]["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["name"] == "Sam"
    assert stack.sandbox.threads[USER].messages == []

    async with stack.http.post(f"{stack.base}/api/users", json={"wa_id": "12", "name": "x"}) as r:
        assert r.status == 400
    async with stack.http.post(f"{stack.base}/api/users", data="wa_id=15550107777") as r:
        assert r.status == 400  # only the page's JSON fetch, never a cross-site form


async def test_a_bot_that_rejects_the_signature_shows_a_failed_message() -> None:
    stack = await start_stack(FakeBot("", "", answer_status=403))
    try:
        async with EventStream(stack.http, f"{stack.base}/api/events") as events:
            sent = await stack.page_send({"type": "text", "text": "hi"})
            status = await events.wait_for("status", lambda d: d["id"] == sent["id"] and d["status"] == "failed")
            assert "signature" in status["error"]
            notice = await events.wait_for("notice")
            assert notice["wa_id"] == USER and "WHATSAPP_APP_SECRET" in notice["text"]
    finally:
        await stop_stack(stack)


async def test_an_unreachable_bot_shows_a_failed_message(stack: Stack) -> None:
    await stack.bot.stop()
    sent = await stack.page_send({"type": "text", "text": "hi"})

    await eventually(lambda: stack.sandbox.threads[USER].messages[0].status == "failed")
    assert "unreachable" in (stack.sandbox.threads[USER].messages[0].error or "")
    assert sent["status"] == "sent"


async def test_webhook_verification_handshake(stack: Stack) -> None:
    async with stack.http.post(f"{stack.base}/api/verify-webhook", json={}) as response:
        assert await response.json() == {
            "state": "verified",
            "detail": "webhook verified: the bot echoed hub.challenge",
        }

    stack.bot.verify_token = "something else"
    async with stack.http.post(f"{stack.base}/api/verify-webhook", json={}) as response:
        result = await response.json()
    assert result["state"] == "rejected" and "WHATSAPP_VERIFY_TOKEN" in result["detail"]


async def test_the_sandbox_verifies_the_bot_webhook_once_it_is_up() -> None:
    stack = await start_stack(verify_webhook_on_start=True)
    try:
        await eventually(lambda: stack.sandbox.bot_webhook["state"] == "verified")
    finally:
        await stop_stack(stack)
