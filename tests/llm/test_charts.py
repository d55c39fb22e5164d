"""The spending chart: a real PNG, stored under an unguessable name where the channel can serve it."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from actions import accounts
from actions.accounts import ActionSpendingSummary
from actions.runtime import background_done
from assistant_llm.charts import ChartStore, UnsafeChartDirectory, render_category_chart
from checks.action_runner import make_tracker
from checks.llm_support import run

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
    await background_done()  # drawn after the action answered
    png_size((tmp_path / image.rsplit("/", 1)[1]).read_bytes())
    assert list(tmp_path.glob("*.pending")) == []


async def test_the_answer_does_not_wait_for_the_chart_to_be_drawn(service, customer, offline, monkeypatch, tmp_path):
    monkeypatch.setenv("CHART_BASE_URL", "http://localhost:5005/webhooks/whatsapp/charts")
    monkeypatch.setenv("CHART_DIR", str(tmp_path))
    drawing = threading.Event()

    def slow_chart(*args):
        drawing.wait(10)
        return render_category_chart(*args)

    monkeypatch.setattr(accounts, "render_category_chart", slow_chart)
    outcome = await run(ActionSpendingSummary(), make_tracker("show me a breakdown of my spending",
                                                              "spending_insights"))
    name = outcome.messages[1]["image"].rsplit("/", 1)[1]
    assert not (tmp_path / name).exists() and (tmp_path / name).with_suffix(".pending").exists()
    drawing.set()
    await background_done()
    png_size((tmp_path / name).read_bytes())
    assert not (tmp_path / name).with_suffix(".pending").exists()


async def test_a_chart_that_cannot_be_drawn_is_given_up(service, customer, offline, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("CHART_BASE_URL", "http://localhost:5005/webhooks/whatsapp/charts")
    monkeypatch.setenv("CHART_DIR", str(tmp_path))

    def broken_chart(*args):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(accounts, "render_category_chart", broken_chart)
    outcome = await run(ActionSpendingSummary(), make_tracker("show me a breakdown of my spending",
                                                              "spending_insights"))
    assert outcome.responses == ["utter_spending_summary", None]  # the answer is whole
    await background_done()
    name = outcome.messages[1]["image"].rsplit("/", 1)[1]
    assert [path.name for path in tmp_path.iterdir()] == [name.replace(".png", ".failed")]  # the channel stops waiting
    assert "spending chart not made (RuntimeError)" in caplog.text


def test_a_reserved_chart_is_filled_under_its_name_and_old_marks_are_pruned(tmp_path):
    store = ChartStore(tmp_path / "charts", URL)
    url = store.reserve()
    name = url.rsplit("/", 1)[1]
    assert re.fullmatch(r"[\w-]{24}\.png", name)
    mark = tmp_path / "charts" / name.replace(".png", ".pending")
    assert stat.S_IMODE(mark.stat().st_mode) == 0o600
    store.fill(url, b"\x89PNG fake")
    assert (tmp_path / "charts" / name).read_bytes() == b"\x89PNG fake" and not mark.exists()
    with pytest.raises(ValueError):
        store.fill("https://elsewhere.example/charts/x.png", b"x")
    forgotten = store.reserve()
    old_mark = tmp_path / "charts" / forgotten.rsplit("/", 1)[1].replace(".png", ".pending")
    os.utime(old_mark, (0, 0))
    assert store.prune() == 1 and not old_mark.exists()


async def test_no_chart_for_a_narrow_question_or_without_a_url(service, customer, offline, monkeypatch, tmp_path):
    outcome = await run(ActionSpendingSummary(), make_tracker("show me a breakdown", "spending_insights"))
    assert [m.get("image") for m in outcome.messages] == [None]
    monkeypatch.setenv("CHART_BASE_URL", "http://localhost:5005/webhooks/whatsapp/charts")
    outcome = await run(ActionSpendingSummary(), make_tracker("how much at uber", "spending_insights"))
    assert [m.get("image") for m in outcome.messages] == [None]


# -- the chart directory is private to this user ------------------------------------------------

URL = "https://bot.example.ng/webhooks/whatsapp/charts"


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize("mask", [0o000, 0o002, 0o022, 0o077], ids=lambda mask: f"umask {mask:03o}")
def test_a_fresh_directory_is_made_0700_and_each_chart_0600_whatever_the_umask(tmp_path, mask):
    directory = tmp_path / "made-here" / "charts"
    with umask(mask):
        url = ChartStore(directory, URL).save(b"\x89PNG fake")
    assert mode(directory) == 0o700 and os.lstat(directory).st_uid == os.geteuid()
    assert mode(directory.parent) & 0o077 == 0  # a parent made here is private too
    [chart] = directory.iterdir()
    assert chart.name == url.rsplit("/", 1)[1] and mode(chart) == 0o600


def test_an_existing_private_directory_is_used_as_it_is(tmp_path):
    directory = tmp_path / "charts"
    directory.mkdir(mode=0o700)
    (directory / "kept.txt").write_text("x")
    ChartStore(directory, URL).save(b"\x89PNG fake")
    assert mode(directory) == 0o700 and (directory / "kept.txt").exists()


@pytest.mark.parametrize(("bits", "named"), [(0o750, "mode 0750"), (0o755, "mode 0755"), (0o701, "mode 0701"),
                                             (0o707, "mode 0707")])
def test_a_directory_open_to_group_or_others_is_refused(tmp_path, bits, named, caplog):
    directory = tmp_path / "charts"
    directory.mkdir()
    directory.chmod(bits)
    with pytest.raises(UnsafeChartDirectory, match="open to group or others") as refused:
        ChartStore(directory, URL).save(b"\x89PNG fake")
    assert named in str(refused.value) and "CHART_DIR" in str(refused.value)
    assert list(directory.iterdir()) == [] and mode(directory) == bits  # nothing written, nothing changed
    assert "Spending chart not written" in caplog.text


def test_a_symlinked_directory_is_refused_even_if_it_points_somewhere_private(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "charts").symlink_to(real, target_is_directory=True)
    with pytest.raises(UnsafeChartDirectory, match="symbolic link"):
        ChartStore(tmp_path / "charts", URL).save(b"\x89PNG fake")
    assert list(real.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can hand a directory to another user")
def test_another_users_directory_is_refused(tmp_path):
    directory = tmp_path / "charts"
    directory.mkdir(mode=0o700)
    os.chown(directory, 54321, -1)
    with pytest.raises(UnsafeChartDirectory, match="belongs to another user"):
        ChartStore(directory, URL).save(b"\x89PNG fake")


def test_a_file_where_the_directory_should_be_is_refused(tmp_path):
    (tmp_path / "charts").write_text("not a directory")
    with pytest.raises(UnsafeChartDirectory, match="not a directory"):
        ChartStore(tmp_path / "charts", URL).save(b"\x89PNG fake")


def test_a_parent_others_can_write_to_needs_the_sticky_bit(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UnsafeChartDirectory, match="sticky bit"):
        ChartStore(shared / "charts", URL).save(b"\x89PNG fake")
    shared.chmod(0o1777)  # like /tmp: nobody can rename what is not theirs
    ChartStore(shared / "charts", URL).save(b"\x89PNG fake")
    assert mode(shared / "charts") == 0o700


async def test_an_unsafe_directory_costs_the_chart_not_the_answer(service, customer, offline, monkeypatch, tmp_path,
                                                                   caplog):
    shared = tmp_path / "charts"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    monkeypatch.setenv("CHART_BASE_URL", "http://localhost:5005/webhooks/whatsapp/charts")
    monkeypatch.setenv("CHART_DIR", str(shared))
    outcome = await run(ActionSpendingSummary(), make_tracker("show me a breakdown of my spending",
                                                              "spending_insights"))
    assert outcome.responses == ["utter_spending_summary"]
    assert [m.get("image") for m in outcome.messages] == [None]
    assert list(shared.iterdir()) == []
    assert "open to group or others" in caplog.text


def test_prepare_checks_the_directory_at_start_up_only_when_charts_are_on(tmp_path):
    open_directory = tmp_path / "charts"
    open_directory.mkdir()
    open_directory.chmod(0o755)
    ChartStore(open_directory, None).prepare()  # charts off: nothing to check
    with pytest.raises(UnsafeChartDirectory, match="open to group or others"):
        ChartStore(open_directory, URL).prepare()
    ChartStore(tmp_path / "fresh", URL).prepare()
    assert mode(tmp_path / "fresh") == 0o700
