"""The report page in a real headless Chromium: it opens from disk, its main figures are
visible, the intent table sorts, Rasa's images load, and the KPIs of the scripted
conversations are on it. Saves ``results/report.png``.

Needs Debian's Chromium (``make browser``) and the ``playwright`` package.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import zlib
from pathlib import Path

import pytest

from analytics.kpis import compute
from analytics.report_page import append_history, render, run_summary, write_page
from analytics.screenshot import CHROMIUM, LAUNCH_ARGS
from tests.analytics.scripted import recorded

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "results" / "report.png"

INTENTS = {
    "check_balance": {"precision": 0.9, "recall": 1.0, "f1-score": 0.947, "support": 12, "confused_with": {}},
    "transfer_money": {"precision": 0.95, "recall": 0.9, "f1-score": 0.924, "support": 40,
                       "confused_with": {"pay_bill": 3}},
    "out_of_scope": {"precision": 0.7, "recall": 0.6, "f1-score": 0.646, "support": 30,
                     "confused_with": {"help": 5}},
    "accuracy": 0.87,
    "macro avg": {"precision": 0.85, "recall": 0.83, "f1-score": 0.839, "support": 82},
    "weighted avg": {"precision": 0.85, "recall": 0.83, "f1-score": 0.83, "support": 82},
}
ENTITIES = {
    "amount": {"precision": 0.99, "recall": 0.98, "f1-score": 0.985, "support": 100},
    "bank": {"precision": 0.97, "recall": 1.0, "f1-score": 0.985, "support": 50},
    "macro avg": {"precision": 0.98, "recall": 0.99, "f1-score": 0.985, "support": 150},
}
FAILED = """version: "3.1"
stories:
- story: transfer to another person (./tests/stories/test_transfers.yml)
  steps:
  - intent: transfer_money
  - action: transfer_form  # predicted: action_default_fallback
  - active_loop: transfer_form
"""


def png(width: int = 60, height: int = 40) -> bytes:
    """A small valid PNG (a grey rectangle), standing in for Rasa's plots."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.fixture
def results(tmp_path: Path) -> Path:
    nlu, core = tmp_path / "nlu", tmp_path / "core"
    nlu.mkdir()
    core.mkdir()
    (nlu / "intent_report.json").write_text(json.dumps(INTENTS))
    (nlu / "DIETClassifier_report.json").write_text(json.dumps(ENTITIES))
    for name in ("intent_confusion_matrix.png", "intent_histogram.png"):
        (nlu / name).write_bytes(png())
    (core / "story_confusion_matrix.png").write_bytes(png())
    (core / "failed_test_stories.yml").write_text(FAILED)
    stories = tmp_path / "stories"
    stories.mkdir()
    (stories / "test_transfers.yml").write_text(
        'version: "3.1"\nstories:\n' + "".join(f"- story: s{i}\n  steps:\n  - intent: greet\n" for i in range(5)))
    # an earlier run with a lower macro-F1, then this one
    (tmp_path / "history.jsonl").write_text(json.dumps({"at": "2026-03-01T10:00:00+00:00", "commit": "abc1234",
                                                        "intent_macro_f1": 0.8, "intent_accuracy": 0.85,
                                                        "stories": 5, "stories_failed": 2}) + "\n")
    append_history(tmp_path, run_summary(tmp_path, stories))
    (tmp_path / "kpis.json").write_text(json.dumps(compute(recorded().read()).as_dict()))
    write_page(tmp_path)
    return tmp_path


def test_the_history_line_holds_this_runs_figures_and_the_commit(results: Path) -> None:
    runs = [json.loads(line) for line in (results / "history.jsonl").read_text().splitlines()]

    assert len(runs) == 2
    assert runs[-1]["intent_macro_f1"] == 0.839 and runs[-1]["intent_accuracy"] == 0.87
    assert runs[-1]["entity_macro_f1"] == {"DIETClassifier": 0.985}
    assert runs[-1]["stories"] == 5 and runs[-1]["stories_failed"] == 1
    assert runs[-1]["commit"]


def test_a_page_without_any_results_says_what_to_run(tmp_path: Path) -> None:
    page = render(tmp_path)

    assert "intent_report.json is missing" in page and "make kpis" in page and "rasa test nlu --nlu" in page


@pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="the playwright package is missing")
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (make browser)")
async def test_the_page_shows_its_figures_in_chromium(results: Path) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)
        try:
            page = await chromium.new_page(viewport={"width": 1280, "height": 1000})
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            await page.goto((results / "index.html").as_uri())

            headline = page.locator("#headline-f1")
            assert await headline.is_visible()
            assert "0.839" in await headline.inner_text()
            assert "▲ +0.039" in await headline.inner_text() and "abc1234" in await headline.inner_text()
            assert "4 / 5" in await page.locator("#headline-stories").inner_text()
            assert "0.985" in await page.locator("#headline-entity-DIETClassifier").inner_text()

            # The intent table: worst F1 first, then sorted by a click on a column.
            names = page.locator("#intent-table tbody tr td:first-child")
            assert await names.all_inner_texts() == ["out_of_scope", "transfer_money", "check_balance"]
            await page.click("#intent-table th:has-text('Support')")
            assert await names.all_inner_texts() == ["check_balance", "out_of_scope", "transfer_money"]
            await page.click("#intent-table th:has-text('Support')")
            assert await names.all_inner_texts() == ["transfer_money", "out_of_scope", "check_balance"]

            # Rasa's images load from disk, beside the page.
            for alt in ("Intent confusion matrix", "Intent prediction confidence", "Action confusion matrix"):
                image = page.locator(f"img[alt='{alt}']")
                assert await image.is_visible()
                assert await image.evaluate("img => img.complete && img.naturalWidth > 0"), alt

            # The failed story, with the turn that broke.
            broke = page.locator("#stories li.broke")
            assert await broke.is_visible()
            assert "predicted: action_default_fallback" in await broke.inner_text()

            # The KPIs of the scripted conversations (tests/analytics/test_kpis.py counts them by hand).
            for ident, value in (("kpi-conversations", "7"), ("kpi-customers", "4"), ("kpi-containment", "85.7 %"),
                                 ("kpi-handoff", "14.3 %"), ("kpi-fallback", "5.6 %"), ("kpi-llm", "5.6 %"),
                                 ("kpi-latency", "300 ms / 1000 ms"), ("kpi-satisfaction", "50.0 %")):
                card = page.locator(f"#{ident} .value")
                assert await card.is_visible(), ident
                assert await card.inner_text() == value, ident
            assert await page.locator("#kpis svg[aria-label='Conversations per day']").is_visible()
            assert await page.locator("#kpis svg[aria-label='Confirmations']").is_visible()
            assert await page.locator("#compare code").first.is_visible()
            assert "rasa test nlu --nlu data/nlu --config config.yml other_config.yml" in \
                await page.locator("#compare").inner_text()

            assert problems == []
            SCREENSHOT.parent.mkdir(exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            await chromium.close()
