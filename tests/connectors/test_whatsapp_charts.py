"""The spending chart reaches the customer: the channel uploads the PNG the action wrote and
sends it by media id, falls back to its link when the upload fails, and serves that link
itself. Real HTTP on 127.0.0.1 throughout: a fake Graph API with Meta's media upload, the
channel in Sanic, and the local sandbox as a second, stricter Meta."""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage
from yarl import URL

from assistant_llm.charts import ChartStore, render_category_chart
from checks.whatsapp_fakes import (
    ADA,
    PHONE_NUMBER_ID,
    TOKEN,
    FakeGraphApi,
    RecordingAgent,
    WebhookServer,
    load_payload,
)
from connectors.whatsapp import WhatsAppConfig, WhatsAppInput, WhatsAppOutput
from connectors.whatsapp.charts import UPLOAD_FILENAME
from connectors.whatsapp.graph import GraphApiClient, RequestRejected, RetryPolicy
from connectors.whatsapp.outbound import image_message
from sandbox.config import SandboxConfig
from sandbox.fake_meta.app import start_server
from sandbox.fake_meta.graph_api import graph_error

BASE_URL = "https://bot.example.ng/webhooks/whatsapp/charts"
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, jitter=0.5, total_timeout=5.0)
SANDBOX_USER = "2348000000001"  # one of the sandbox's default simulated users


@pytest.fixture
def charts(tmp_path: Path) -> ChartStore:
    return ChartStore(tmp_path / "charts", BASE_URL)


@pytest.fixture
def config(config: WhatsAppConfig, charts: ChartStore) -> WhatsAppConfig:
    """The channel's usual test settings, with charts under ``BASE_URL``."""
    return replace(config, charts=charts)


@pytest.fixture(scope="module")
def png() -> bytes:
    return render_category_chart([("food", 4_250_000), ("transport", 1_800_000), ("airtime", 300_000)], "this month")


@pytest.fixture
def chart_url(charts: ChartStore, png: bytes) -> str:
    return charts.save(png)


def chart_file(charts: ChartStore, url: str) -> Path:
    return charts.directory / url.rsplit("/", 1)[-1]


async def bot_says(server: WebhookServer, agent: RecordingAgent, response: dict[str, Any]) -> None:
    """Have the bot answer one incoming WhatsApp message with ``response``."""

    async def respond(message: UserMessage) -> None:
        await message.output_channel.send_response(message.sender_id, copy.deepcopy(response))

    agent.responder = respond
    assert (await server.post(load_payload("text")))[0] == 200
    await server.settle()


# -- sending the chart ------------------------------------------------------------------------


async def test_a_chart_is_uploaded_and_sent_by_media_id(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi, charts: ChartStore, chart_url: str
) -> None:
    await bot_says(server, agent, {"text": "Your spending this month", "image": chart_url})

    (upload,) = graph.uploads
    assert upload.status == 200
    assert upload.content == chart_file(charts, chart_url).read_bytes()
    assert upload.fields == {"messaging_product": "whatsapp", "type": "image/png"}
    assert upload.content_type == "image/png"
    assert upload.filename == UPLOAD_FILENAME  # the file's token stays with us
    text, image = graph.delivered()
    assert text["text"]["body"] == "Your spending this month"
    assert image["type"] == "image" and image["to"] == ADA
    media_id = image["image"]["id"]
    assert image["image"] == {"id": media_id}
    assert graph.media[media_id] == (upload.content, "image/png")


async def test_a_chart_still_being_drawn_follows_the_text_once_it_is_there(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi, charts: ChartStore, png: bytes
) -> None:
    """The action server answers before it draws: the customer reads the text, then gets the chart."""
    url = charts.reserve()

    async def respond(message: UserMessage) -> None:
        await message.output_channel.send_response(message.sender_id, {"text": "Your spending this month"})
        await message.output_channel.send_response(message.sender_id, {"image": url})

    agent.responder = respond
    assert (await server.post(load_payload("text")))[0] == 200
    await graph.wait_for(lambda g: g.delivered_texts() == ["Your spending this month"])
    assert graph.uploads == [] and len(graph.delivered()) == 1  # the chart is not drawn yet
    charts.fill(url, png)
    await server.settle()
    text, image = graph.delivered()
    assert text["text"]["body"] == "Your spending this month"
    assert graph.media[image["image"]["id"]] == (png, "image/png")


async def test_a_chart_whose_drawing_failed_is_not_sent(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi, charts: ChartStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = charts.reserve()

    async def respond(message: UserMessage) -> None:
        await message.output_channel.send_response(message.sender_id, {"text": "Your spending", "image": url})

    agent.responder = respond
    with caplog.at_level(logging.WARNING):
        assert (await server.post(load_payload("text")))[0] == 200
        await graph.wait_for(lambda g: g.delivered_texts() == ["Your spending"])
        charts.abandon(url)
        await server.settle()
    assert graph.uploads == [] and len(graph.delivered()) == 1  # no link to a chart that does not exist
    assert "was not drawn (the drawing failed); not sent" in caplog.text


async def test_an_upload_retried_after_a_5xx_sends_the_whole_file_again(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi, png: bytes, chart_url: str
) -> None:
    graph.answer_next_upload(503, graph_error(2, "Service temporarily unavailable"))
    await bot_says(server, agent, {"image": chart_url})

    assert [upload.status for upload in graph.uploads] == [503, 200]
    assert [upload.content for upload in graph.uploads] == [png, png]
    (image,) = graph.delivered()
    assert graph.media[image["image"]["id"]][0] == png


@pytest.mark.parametrize(
    "answer",
    [(400, graph_error(100, "Param file must be a file with one of the following types: image/jpeg")),
     (200, {"messaging_product": "whatsapp"})],
    ids=["refused", "no id"],
)
async def test_a_failed_upload_falls_back_to_the_link(
    answer: tuple[int, dict[str, Any]],
    server: WebhookServer,
    agent: RecordingAgent,
    graph: FakeGraphApi,
    chart_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    graph.answer_next_upload(*answer)
    with caplog.at_level(logging.DEBUG):
        await bot_says(server, agent, {"text": "Here is your breakdown", "image": chart_url})

    assert len(graph.uploads) == 1  # a refusal is not retried
    text, image = graph.delivered()
    assert image["type"] == "image" and image["image"] == {"link": chart_url}
    assert "could not be uploaded to WhatsApp; sending it by link" in caplog.text
    name = chart_url.rsplit("/", 1)[-1]
    assert ADA not in caplog.text and name not in caplog.text and TOKEN not in caplog.text


async def test_graph_down_for_uploads_still_gets_the_link_out(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi, chart_url: str
) -> None:
    attempts = server.channel.client.retry.max_attempts
    for _ in range(attempts):
        graph.answer_next_upload(500, graph_error(2, "Service temporarily unavailable"))
    await bot_says(server, agent, {"image": chart_url})

    assert [upload.status for upload in graph.uploads] == [500] * attempts
    assert graph.delivered() == [image_message(ADA, chart_url)]


@pytest.mark.parametrize(
    "url",
    [
        "https://bank.example/charts/nov.png",
        "https://elsewhere.example/webhooks/whatsapp/charts/AAAAAAAAAAAAAAAAAAAAAAAA.png",
        f"{BASE_URL}/../../etc/passwd.png",
        f"{BASE_URL}/short.png",
        f"{BASE_URL}/AAAAAAAAAAAAAAAAAAAAAAAA.png",  # a chart name, but no such file
    ],
    ids=["other site", "other base", "traversal", "wrong length", "missing file"],
)
async def test_any_other_image_is_sent_by_link_without_an_upload(
    url: str, server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi, chart_url: str
) -> None:
    await bot_says(server, agent, {"image": url})

    assert graph.uploads == []
    assert graph.delivered() == [image_message(ADA, url)]


async def test_without_a_chart_base_url_images_go_by_link(
    serve: Any, database: Any, agent: RecordingAgent, graph: FakeGraphApi, config: WhatsAppConfig, chart_url: str
) -> None:
    unset = replace(config, charts=ChartStore(config.charts.directory, None))
    server = await serve(WhatsAppInput(unset, database=database, retry=FAST_RETRY))
    await bot_says(server, agent, {"image": chart_url})

    assert graph.uploads == []
    assert graph.delivered() == [image_message(ADA, chart_url)]


async def test_an_image_over_5_mb_is_refused_before_any_request(graph: FakeGraphApi) -> None:
    client = GraphApiClient(graph.api_url, PHONE_NUMBER_ID, TOKEN, retry=FAST_RETRY)
    try:
        with pytest.raises(RequestRejected):
            await client.upload_media(b"\x89PNG" + bytes(5 * 1024 * 1024), "image/png", "big.png")
        assert graph.uploads == []
        media_id = await client.upload_media(b"%PDF-1.4 receipt", "application/pdf", "receipt.pdf")
    finally:
        await client.close()
    assert graph.media[media_id] == (b"%PDF-1.4 receipt", "application/pdf")
    assert graph.uploads[0].filename == "receipt.pdf"


def test_an_image_message_is_by_link_or_by_id_never_both() -> None:
    assert image_message(ADA, "https://bank.example/c.png")["image"] == {"link": "https://bank.example/c.png"}
    assert image_message(ADA, media_id="123", caption="Spending")["image"] == {"id": "123", "caption": "Spending"}
    with pytest.raises(ValueError):
        image_message(ADA)
    with pytest.raises(ValueError):
        image_message(ADA, "https://bank.example/c.png", media_id="123")


# -- serving the chart ------------------------------------------------------------------------


async def get(server: WebhookServer, path: str) -> tuple[int, dict[str, str], bytes]:
    """GET a raw (already encoded) path, so ``..`` reaches the server as written."""
    url = URL(f"http://127.0.0.1:{server.port}/webhooks/whatsapp/charts/{path}", encoded=True)
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, dict(response.headers), await response.read()


async def test_the_chart_link_serves_the_png(
    server: WebhookServer, charts: ChartStore, chart_url: str, png: bytes
) -> None:
    status, headers, body = await get(server, chart_url.rsplit("/", 1)[-1])
    assert status == 200
    assert headers["Content-Type"] == "image/png"
    assert headers["Cache-Control"] == "no-store"
    assert body == png == chart_file(charts, chart_url).read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "../x.png",
        "..%2Fx.png",
        "..%2F..%2Fsecret.png",
        "short.png",
        "AAAAAAAAAAAAAAAAAAAAAAAAA.png",  # 25 characters
        "AAAAAAAAAAAAAAAAAAAAAAAA.png",  # well formed, but there is no such chart
        "AAAAAAAAAAAAAAAAAAAAAAAA.part",
        "",
        "notes-kept-in-the-dir.png",
        "linked-outside-the-dir00.png",
        "a-directory-not-a-file00.png",
    ],
)
async def test_anything_but_an_existing_chart_is_404(
    path: str, server: WebhookServer, charts: ChartStore, chart_url: str, tmp_path: Path
) -> None:
    (tmp_path / "x.png").write_bytes(b"outside")
    (tmp_path / "secret.png").write_bytes(b"outside")
    (charts.directory / "notes-kept-in-the-dir.png").write_bytes(b"not a chart name")  # 21 characters
    (charts.directory / "AAAAAAAAAAAAAAAAAAAAAAAA.part").write_bytes(b"half a chart")
    (charts.directory / "linked-outside-the-dir00.png").symlink_to(tmp_path / "secret.png")
    (charts.directory / "a-directory-not-a-file00.png").mkdir()

    status, headers, body = await get(server, path)
    assert status == 404
    assert b"outside" not in body and b"half a chart" not in body
    assert not headers.get("Content-Type", "").startswith("image/")


@pytest.mark.parametrize("spoiled", ["open to the group", "reached through a symbolic link"])
async def test_nothing_is_read_from_a_chart_directory_that_is_not_private(
    spoiled: str, server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi, charts: ChartStore,
    chart_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    if spoiled == "open to the group":
        charts.directory.chmod(0o750)
    else:  # the same files, but CHART_DIR is a link to where they are
        charts.directory.rename(tmp_path / "real")
        charts.directory.symlink_to(tmp_path / "real", target_is_directory=True)

    status, _, body = await get(server, chart_url.rsplit("/", 1)[-1])
    assert status == 404 and not body.startswith(b"\x89PNG")
    await bot_says(server, agent, {"image": chart_url})
    assert graph.uploads == []  # not sent to Meta either
    (image,) = graph.delivered()
    assert image["image"] == {"link": chart_url}  # whose link now answers 404
    assert "Spending chart not read: CHART_DIR" in caplog.text


# -- against the sandbox, a stricter Meta ----------------------------------------------------


@pytest.fixture
async def sandbox() -> AsyncIterator[Any]:
    config = SandboxConfig.generate(
        port=0,
        host="127.0.0.1",
        bot_webhook_url="http://127.0.0.1:9/webhooks/whatsapp/webhook",  # nothing is sent to the bot here
        status_delay=60.0,  # no status webhooks before the test ends
        verify_webhook_on_start=False,
    )
    running = await start_server(config, environ={})
    yield running
    await running.stop()


async def test_the_sandbox_takes_the_upload_and_shows_the_chart(
    sandbox: Any, charts: ChartStore, chart_url: str, png: bytes
) -> None:
    config = sandbox.config
    client = GraphApiClient(config.graph_api_url, config.phone_number_id, config.access_token, retry=FAST_RETRY)
    try:
        await WhatsAppOutput(client, charts=charts).send_response(
            SANDBOX_USER, {"text": "Your spending this month", "image": chart_url}
        )
    finally:
        await client.close()

    text, image = sandbox.sandbox.threads[SANDBOX_USER].messages[-2:]
    assert text.type == "text" and image.type == "image" and image.sender == "bot"
    media_id = image.content["image"]["id"]
    async with aiohttp.ClientSession() as http, http.get(f"{config.base_url}/api/media/{media_id}") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/png"
        assert await response.read() == png  # what the chat page shows
