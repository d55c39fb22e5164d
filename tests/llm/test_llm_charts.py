"""The spending chart: a real PNG, stored under an unguessable name where the channel can serve it."""

from __future__ import annotations

import os
import re
import struct

from llm_support import run

from actions.accounts import ActionSpendingSummary
from assistant_llm.charts import ChartStore, render_category_chart
from tests.shared_fakes import make_tracker

ROWS = [("transport", 14_245_050), ("savings", 7_800_000), ("food", 6_395_150), ("bills", 6_300_000),
        ("transfers", 3_850_000), ("shopping", 1_685_000), ("airtime", 850_000), ("entertainment", 700_000)]


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def test_the_chart_is_a_png_of_sensible_size():
    width, height = png_size(render_category_chart(ROWS, "last month"))
    assert 500 <= width <= 900 and 300 <= height <= 900
    assert png_size(render_category_chart(ROWS[:1], "today", "pidgin"))[0] > 0


def test_the_store_writes_where_the_channel_reads_and_forgets_old_charts(tmp_path):
    store = ChartStore(tmp_path / "charts", "https://bot.example.ng/webhooks/whatsapp/charts")
    url = store.save(b"\x89PNG fake")
    name = url.rsplit("/", 1)[1]
    assert url.startswith("https://bot.example.ng/webhooks/whatsapp/charts/")
    assert re.fullmatch(r"[\w-]{24}\.png", name)
    assert (tmp_path / "charts" / name).read_bytes() == b"\x89PNG fake"
    old = tmp_path / "charts" / "old.png"
    old.write_bytes(b"x")
    os.utime(old, (0, 0))
    assert store.prune() == 1 and not old.exists() and (tmp_path / "charts" / name).exists()
    assert not ChartStore.from_env({}).enabled


async def test_a_breakdown_question_also_gets_the_chart_image(service, customer, offline, monkeypatch, tmp_path):
    monkeypatch.setenv("CHART_BASE_URL", "http://localhost:5005/webhooks/whatsapp/charts/")
    monkeypatch.setenv("CHART_DIR", str(tmp_path))
    outcome = await run(ActionSpendingSummary(), make_tracker("show me a breakdown of my spending",
                                                              "spending_insights"))
    assert outcome.responses == ["utter_spending_summary", None]
    image = outcome.messages[1]["image"]
    assert image.startswith("http://localhost:5005/webhooks/whatsapp/charts/")
    png_size((tmp_path / image.rsplit("/", 1)[1]).read_bytes())


async def test_no_chart_for_a_narrow_question_or_without_a_url(service, customer, offline, monkeypatch, tmp_path):
    outcome = await run(ActionSpendingSummary(), make_tracker("show me a breakdown", "spending_insights"))
    assert [m.get("image") for m in outcome.messages] == [None]
    monkeypatch.setenv("CHART_BASE_URL", "http://localhost:5005/webhooks/whatsapp/charts")
    outcome = await run(ActionSpendingSummary(), make_tracker("how much at uber", "spending_insights"))
    assert [m.get("image") for m in outcome.messages] == [None]
