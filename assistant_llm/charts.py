"""The spending chart: a category breakdown as a PNG, and where it is kept for the channel to send.

rasa-sdk cannot serve files, so the action writes the PNG into a directory the
WhatsApp channel (the Rasa server, on the same machine) can read, under a random
unguessable name, and hands Rasa an image URL under ``CHART_BASE_URL``. The
action reserves the name and hands over the URL at once, and draws the chart
after its answer has gone (``reserve``, then ``fill``): the customer reads the
text while the chart is drawn, and the channel waits for the file while a
``<name>.pending`` mark says it is still coming (``<name>.failed``: it will not). The
channel (``connectors.whatsapp.charts``) recognises such a URL, reads the file,
uploads it to the Graph API media endpoint and sends the image by media id, so
Meta never has to fetch from us. Only if that upload fails does it send the URL
itself, which the channel answers at ``/webhooks/whatsapp/charts/<name>``; any
other image URL is sent by link as it is. Files older than an hour are deleted.

The directory is private to the user both processes run as: made with mode 0700
when missing; one that is a symbolic link, belongs to another user, is open to
group or others, or sits in a parent others can rename things in (writable by
group or others without the sticky bit, unlike /tmp) is refused with
``UnsafeChartDirectory``, by the writer and the reader alike. Each PNG is 0600.

    CHART_DIR       where PNGs are written and read (default: <tmp>/whatsapp-banking-charts)
    CHART_BASE_URL  the public URL of the channel's chart route, e.g.
                    https://bot.example.ng/webhooks/whatsapp/charts; unset: no charts

``scripts/serve.sh`` sets both for the action server and ``rasa run`` alike (the
URL on localhost, which Meta cannot reach: in production set it to the public one).
The PNG carries category names and naira amounts only: no names, no account numbers.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import stat
import tempfile
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from banking.errors import ConfigError
from banking.money import format_money

logger = logging.getLogger(__name__)

KEEP_SECONDS = 3600
MAX_SLICES = 6
_COLOURS = ("#0B6E4F", "#08A045", "#6BBF59", "#F2C14E", "#F78154", "#5D8BF4", "#B8B8B8")
_TITLES = {"english": "Your spending {period}", "pidgin": "How you spend money {period}"}
_OTHER = {"english": "other", "pidgin": "others"}
_render_lock = threading.Lock()  # matplotlib's font cache and state are not thread-safe


class UnsafeChartDirectory(ConfigError):
    """CHART_DIR is not private to this user; the message says why and what to do."""


def private_directory(path: Path, *, create: bool = True) -> Path:
    """``path`` once it is known to be a directory only this user can use; made 0700 if missing.

    Charts show a customer's spending, and the channel sends whatever PNG it finds
    there, so nobody else may read, list, add or swap files in it. Raises
    UnsafeChartDirectory for a directory that fails that, FileNotFoundError when it is
    missing and ``create`` is false, and OSError when it cannot be made.
    """
    parent = path.parent
    if create:
        os.makedirs(parent, mode=0o700, exist_ok=True)  # only a parent we make here; an existing one is checked
        try:
            os.mkdir(path, 0o700)  # the umask can only take bits away; the check below sees the result
        except FileExistsError:
            pass  # someone's: checked like any other
    where = f"CHART_DIR {str(path)!r}"
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeChartDirectory(f"{where} is a symbolic link; point CHART_DIR at the real directory")
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeChartDirectory(f"{where} is not a directory")
    if info.st_uid != os.geteuid():
        raise UnsafeChartDirectory(f"{where} belongs to another user (uid {info.st_uid}); use a directory of "
                                   "your own, e.g. mktemp -d")
    if info.st_mode & 0o077:
        raise UnsafeChartDirectory(f"{where} is open to group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
                                   "chmod 700 it or use a fresh one")
    parent_mode = os.stat(parent).st_mode
    if parent_mode & 0o022 and not parent_mode & stat.S_ISVTX:
        raise UnsafeChartDirectory(f"{where} is in a directory others can write to without the sticky bit, "
                                   "so they could swap it; use a parent only you can write to")
    return path


def render_category_chart(by_category: Sequence[tuple[str, int]], period_label: str,
                          language: str = "english", currency: str = "NGN") -> bytes:
    """A horizontal bar chart of money out per category (minor units of ``currency`` in), largest first,
    as PNG bytes."""
    rows = [(name, kobo) for name, kobo in by_category if kobo > 0]
    if len(rows) > MAX_SLICES:
        rows = rows[:MAX_SLICES - 1] + [(_OTHER.get(language, "other"), sum(k for _, k in rows[MAX_SLICES - 1:]))]
    with _render_lock, warnings.catch_warnings():
        # matplotlib 3.5 calls pyparsing names that pyparsing 3.1+ reports as deprecated
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="pyparsing")
        warnings.filterwarnings("ignore", message=".*deprecated.*", category=DeprecationWarning)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(6.4, 0.55 * max(len(rows), 2) + 1.4), dpi=110)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot(1, 1, 1)
        names = [name.capitalize() for name, _ in rows][::-1]
        values = [kobo / 100 for _, kobo in rows][::-1]
        colours = list(_COLOURS[:len(rows)])[::-1]
        bars = axes.barh(names, values, color=colours)
        total = sum(kobo for _, kobo in rows) or 1
        for bar, (_, kobo) in zip(bars, rows[::-1], strict=True):
            axes.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                      f"  {format_money(kobo, currency)} ({round(100 * kobo / total)}%)", va="center", fontsize=9)
        axes.set_title(_TITLES.get(language, _TITLES["english"]).format(period=period_label), fontsize=11)
        axes.set_xticks([])
        for side in ("top", "right", "bottom"):
            axes.spines[side].set_visible(False)
        axes.set_xlim(0, max(values or [1]) * 1.55)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    return buffer.getvalue()


@dataclass(frozen=True)
class ChartStore:
    """Writes PNGs where the channel can read them and names the URL it answers for them."""

    directory: Path
    base_url: str | None

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ChartStore:
        directory = environ.get("CHART_DIR", "").strip() or os.path.join(tempfile.gettempdir(),
                                                                         "whatsapp-banking-charts")
        base_url = environ.get("CHART_BASE_URL", "").strip().rstrip("/") or None
        return cls(Path(directory), base_url)

    def prepare(self) -> None:
        """At start-up, when charts are on: make or check the directory, so a bad CHART_DIR stops the start."""
        if self.enabled:
            private_directory(self.directory)

    def save(self, png: bytes, now: float | None = None) -> str:
        """Store the PNG (0600) under a random name; the URL to send (requires ``base_url``).

        Raises UnsafeChartDirectory (a ConfigError) when the directory is not private.
        """
        name = self._new_name(now)
        self._write(name, png)
        return f"{self.base_url}/{name}"

    def reserve(self, now: float | None = None) -> str:
        """The URL of a chart drawn later (``fill``), at once: the answer need not wait for the drawing.

        A ``<name>.pending`` mark (0600, empty) tells the channel to wait for the PNG instead of
        giving up on it; ``fill`` or ``abandon`` removes it.
        """
        name = self._new_name(now)
        os.close(os.open(self._pending(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
        return f"{self.base_url}/{name}"

    def fill(self, url: str, png: bytes) -> None:
        """Write the PNG of a reserved chart."""
        name = self._reserved_name(url)
        try:
            private_directory(self.directory, create=False)
        except UnsafeChartDirectory as error:
            logger.error("Spending chart not written: %s", error)
            raise
        self._write(name, png)
        self._pending(name).unlink(missing_ok=True)

    def abandon(self, url: str) -> None:
        """A reserved chart that will not be drawn: its mark becomes ``<name>.failed``, so the
        channel stops waiting and sends nothing (rather than a link to no file)."""
        pending = self._pending(self._reserved_name(url))
        try:
            pending.replace(pending.with_suffix(".failed"))
        except FileNotFoundError:
            os.close(os.open(pending.with_suffix(".failed"), os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))

    def _new_name(self, now: float | None) -> str:
        if not self.base_url:
            raise RuntimeError("CHART_BASE_URL is not set")
        try:
            private_directory(self.directory)
        except UnsafeChartDirectory as error:
            logger.error("Spending chart not written: %s", error)
            raise
        self.prune(now)
        return f"{secrets.token_urlsafe(18)}.png"

    def _reserved_name(self, url: str) -> str:
        prefix = f"{self.base_url}/"
        name = url[len(prefix):] if self.base_url and url.startswith(prefix) else ""
        if not name or "/" in name or not name.endswith(".png") or name.startswith("."):
            raise ValueError("not a chart URL of this store")
        return name

    def _pending(self, name: str) -> Path:
        return (self.directory / name).with_suffix(".pending")

    def _write(self, name: str, png: bytes) -> None:
        target = self.directory / name
        partial = target.with_suffix(".part")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), 0o600)  # whatever the umask took away or left
            file.write(png)
        partial.replace(target)  # the channel never sees half a file

    def prune(self, now: float | None = None) -> int:
        """Delete charts (and the marks of charts not drawn) older than an hour; how many went."""
        limit = (now if now is not None else time.time()) - KEEP_SECONDS
        removed = 0
        for path in [*self.directory.glob("*.png"), *self.directory.glob("*.pending"),
                     *self.directory.glob("*.failed")]:
            try:
                if path.stat().st_mtime < limit:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # another worker pruned it first
                continue
        return removed
