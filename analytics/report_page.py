"""results/index.html: the NLU and conversation-test results and the KPIs on one page.

Reads what `rasa test nlu` and `rasa test core` leave in ``results/nlu`` and
``results/core``, the run history (``results/history.jsonl``) and the KPIs
(``results/kpis.json``), and writes one self-contained HTML file: styles, the sorting
script and the charts (inline SVG) are in the page, Rasa's PNGs are linked by relative
path, so it opens from disk without a server. Whatever is missing is said so on the page.
"""

from __future__ import annotations

import html
import json
import subprocess
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

AGGREGATES = ("accuracy", "macro avg", "weighted avg", "micro avg")
NON_ENTITY_REPORTS = {"intent_report.json", "response_selection_report.json"}
COMPARE_COMMAND = ("rasa test nlu --nlu data/nlu --config config.yml other_config.yml "
                   "--runs 3 --percentages 0 25 50 75 --out results/compare")


# ---------------------------------------------------------------- reading Rasa's outputs

def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def intent_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, scores in report.items():
        if name in AGGREGATES or not isinstance(scores, Mapping):
            continue
        rows.append({"name": name, "precision": scores.get("precision"), "recall": scores.get("recall"),
                     "f1": scores.get("f1-score"), "support": scores.get("support"),
                     "confused_with": scores.get("confused_with") or {}})
    return sorted(rows, key=lambda row: (row["f1"] if row["f1"] is not None else 2, row["name"]))


def macro_f1(report: Mapping[str, Any] | None) -> float | None:
    if not report:
        return None
    macro = report.get("macro avg")
    if isinstance(macro, Mapping) and isinstance(macro.get("f1-score"), (int, float)):
        return float(macro["f1-score"])
    scores = [row["f1"] for row in intent_rows(report) if isinstance(row["f1"], (int, float))]
    return sum(scores) / len(scores) if scores else None


def entity_reports(nlu_dir: Path) -> dict[str, dict[str, Any]]:
    """Per extractor (``<Extractor>_report.json``): its report."""
    found = {}
    for path in sorted(nlu_dir.glob("*_report.json")):
        if path.name in NON_ENTITY_REPORTS:
            continue
        report = read_json(path)
        if isinstance(report, Mapping):
            found[path.name[: -len("_report.json")]] = dict(report)
    return found


def failed_stories(core_dir: Path) -> list[dict[str, Any]]:
    """Each failed test story with its steps; the step Rasa marked ``# predicted: ...`` broke it."""
    path = core_dir / "failed_test_stories.yml"
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    stories: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("- story:"):
            current = {"name": stripped[len("- story:"):].strip(), "steps": [], "broke_at": None}
            stories.append(current)
        elif current is not None and stripped.startswith("- "):
            step = stripped[2:]
            if "# predicted:" in step and current["broke_at"] is None:
                current["broke_at"] = len(current["steps"])
            current["steps"].append(step)
    return stories


def story_count(stories_dir: Path) -> int:
    total = 0
    for path in sorted(stories_dir.glob("test_*.yml")):
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        total += len(content.get("stories") or [])
    return total


# ---------------------------------------------------------------- history

def run_summary(results: Path, stories_dir: Path | None = None) -> dict[str, Any]:
    """This run's headline figures, as one line of results/history.jsonl."""
    intents = read_json(results / "nlu" / "intent_report.json")
    entities = {name: _macro(report) for name, report in entity_reports(results / "nlu").items()}
    failed = failed_stories(results / "core")
    return {
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": current_commit(),
        "intent_macro_f1": _round(macro_f1(intents)),
        "intent_accuracy": _round(intents.get("accuracy")) if isinstance(intents, Mapping) else None,
        "entity_macro_f1": {name: _round(value) for name, value in entities.items()},
        "stories": story_count(stories_dir) if stories_dir and stories_dir.exists() else None,
        "stories_failed": len(failed) if (results / "core" / "failed_test_stories.yml").exists() else None,
    }


def append_history(results: Path, summary: Mapping[str, Any]) -> None:
    with (results / "history.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(summary, sort_keys=True) + "\n")


def read_history(results: Path) -> list[dict[str, Any]]:
    path = results / "history.jsonl"
    if not path.exists():
        return []
    runs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            runs.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return runs


def current_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                              check=False)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = done.stdout.strip() or None
    return f"{commit}+changes" if commit and dirty.stdout.strip() else commit


# ---------------------------------------------------------------- the page

def write_page(results: Path) -> Path:
    """Render results/index.html from whatever results/ holds now."""
    results.mkdir(parents=True, exist_ok=True)
    page = results / "index.html"
    page.write_text(render(results), encoding="utf-8")
    return page


def render(results: Path) -> str:
    nlu, core = results / "nlu", results / "core"
    intents = read_json(nlu / "intent_report.json")
    history = read_history(results)
    kpis = read_json(results / "kpis.json")
    latest = history[-1] if history else None
    previous = history[-2] if len(history) > 1 else None
    sections = [
        _headline(intents, latest, previous),
        _kpi_section(kpis),
        _intents_section(intents, nlu),
        _entities_section(entity_reports(nlu)),
        _stories_section(core, latest),
        _history_section(history),
        _compare_section(),
    ]
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    commit = (latest or {}).get("commit") or current_commit() or "unknown"
    return PAGE.format(style=STYLE, script=SCRIPT, generated=_e(generated), commit=_e(commit),
                       body="\n".join(sections))


def _headline(intents: Any, latest: Mapping[str, Any] | None, previous: Mapping[str, Any] | None) -> str:
    f1 = macro_f1(intents) if isinstance(intents, Mapping) else None
    accuracy = intents.get("accuracy") if isinstance(intents, Mapping) else None
    cards = [
        _card("Intent macro-F1", _fmt(f1), _delta(latest, previous, "intent_macro_f1"), "headline-f1"),
        _card("Intent accuracy", _fmt(accuracy), _delta(latest, previous, "intent_accuracy"), "headline-accuracy"),
    ]
    if latest and latest.get("stories") is not None:
        failed = latest.get("stories_failed")
        passed = None if failed is None else latest["stories"] - failed
        shown = f"{passed if passed is not None else '?'} / {latest['stories']}"
        cards.append(_card("Conversation tests passed", shown,
                           _delta(latest, previous, "stories_failed", lower_is_better=True, digits=0),
                           "headline-stories"))
    for name, value in ((latest or {}).get("entity_macro_f1") or {}).items():
        cards.append(_card(f"Entities ({name}) macro-F1", _fmt(value), "", f"headline-entity-{name}"))
    return f'<section id="summary"><div class="cards">{"".join(cards)}</div></section>'


def _intents_section(intents: Any, nlu: Path) -> str:
    if not isinstance(intents, Mapping):
        return _missing("Intents", "results/nlu/intent_report.json is missing: run `make report`.")
    rows = []
    for row in intent_rows(intents):
        confused = ", ".join(f"{name} ({count})" for name, count in
                             sorted(row["confused_with"].items(), key=lambda kv: -kv[1]))
        low = ' class="low"' if isinstance(row["f1"], (int, float)) and row["f1"] < 0.8 else ""
        rows.append(f"<tr{low}><td>{_e(row['name'])}</td>{_num_cell(row['precision'])}{_num_cell(row['recall'])}"
                    f"{_num_cell(row['f1'])}<td data-value=\"{row['support'] or 0}\">{row['support']}</td>"
                    f"<td>{_e(confused)}</td></tr>")
    images = "".join(_image(nlu / name, title) for name, title in (
        ("intent_confusion_matrix.png", "Intent confusion matrix"),
        ("intent_histogram.png", "Intent prediction confidence")))
    return f"""<section id="intents"><h2>Intents (held-out set, tests/nlu)</h2>
<p class="hint">Click a column to sort. Rows below F1 0.8 are marked.</p>
<table class="sortable" id="intent-table"><thead><tr><th>Intent</th><th>Precision</th><th>Recall</th><th>F1</th>
<th>Support</th><th>Confused with</th></tr></thead><tbody>{''.join(rows)}</tbody></table>
<div class="images">{images}</div></section>"""


def _entities_section(reports: Mapping[str, Mapping[str, Any]]) -> str:
    if not reports:
        return _missing("Entities", "No entity report in results/nlu.")
    parts = []
    for extractor, report in reports.items():
        rows = "".join(
            f"<tr><td>{_e(name)}</td>{_num_cell(s.get('precision'))}{_num_cell(s.get('recall'))}"
            f"{_num_cell(s.get('f1-score'))}<td data-value=\"{s.get('support') or 0}\">{s.get('support')}</td></tr>"
            for name, s in sorted(report.items()) if name not in AGGREGATES and isinstance(s, Mapping))
        parts.append(f"""<h3>{_e(extractor)} <span class="muted">macro-F1 {_fmt(_macro(report))}</span></h3>
<table class="sortable"><thead><tr><th>Entity</th><th>Precision</th><th>Recall</th><th>F1</th><th>Support</th></tr>
</thead><tbody>{rows}</tbody></table>""")
    return f'<section id="entities"><h2>Entities per extractor</h2>{"".join(parts)}</section>'


def _stories_section(core: Path, latest: Mapping[str, Any] | None) -> str:
    if not (core / "failed_test_stories.yml").exists():
        return _missing("Conversation tests", "results/core is empty: run `make report`.")
    failed = failed_stories(core)
    total = (latest or {}).get("stories")
    head = f"{len(failed)} of {total} failed" if total is not None else f"{len(failed)} failed"
    if not failed:
        body = '<p class="ok">Every conversation test passed.</p>'
    else:
        items = []
        for story in failed:
            steps = "".join(
                f'<li class="{"broke" if index == story["broke_at"] else ""}">{_e(step)}</li>'
                for index, step in enumerate(story["steps"]))
            items.append(f'<details open><summary>{_e(story["name"])}</summary><ol>{steps}</ol></details>')
        body = ('<p class="hint">The highlighted turn is where the prediction differed from the story '
                '(<code># predicted: …</code>).</p>' + "".join(items))
    image = _image(core / "story_confusion_matrix.png", "Action confusion matrix")
    return f'<section id="stories"><h2>Conversation tests (tests/stories): {head}</h2>{body}' \
           f'<div class="images">{image}</div></section>'


def _history_section(history: Sequence[Mapping[str, Any]]) -> str:
    if not history:
        return _missing("Change against earlier runs", "No results/history.jsonl yet: `make report` starts it.")
    rows = "".join(
        f"<tr><td>{_e(run.get('at', ''))}</td><td><code>{_e(run.get('commit') or '?')}</code></td>"
        f"{_num_cell(run.get('intent_macro_f1'))}{_num_cell(run.get('intent_accuracy'))}"
        f"<td>{run.get('stories_failed') if run.get('stories_failed') is not None else ''}</td></tr>"
        for run in reversed(history[-20:]))
    values = [run.get("intent_macro_f1") for run in history[-20:]]
    chart = _line_chart([v for v in values if isinstance(v, (int, float))], "Intent macro-F1 per run")
    return f"""<section id="history"><h2>Change against earlier runs</h2>{chart}
<table><thead><tr><th>Run</th><th>Commit</th><th>Macro-F1</th><th>Accuracy</th><th>Stories failed</th></tr></thead>
<tbody>{rows}</tbody></table></section>"""


def _kpi_section(kpis: Any) -> str:
    if not isinstance(kpis, Mapping):
        return _missing("Conversation KPIs", "No results/kpis.json: run `make kpis` (reads the analytics store).")
    totals, rates = kpis.get("totals", {}), kpis.get("rates", {})
    response, satisfaction = kpis.get("response_ms", {}), kpis.get("satisfaction", {})
    cards = "".join([
        _card("Conversations", str(totals.get("conversations", 0)), "", "kpi-conversations"),
        _card("Sessions", str(totals.get("sessions", 0)), "", "kpi-sessions"),
        _card("Active customers", str(totals.get("active_customers", 0)), "", "kpi-customers"),
        _card("Messages per customer", _fmt(totals.get("messages_per_customer"), 2), "", "kpi-messages"),
        _card("Containment", _pct(rates.get("containment")), "", "kpi-containment"),
        _card("Handoff rate", _pct(rates.get("handoff")), "", "kpi-handoff"),
        _card("Fallback rate", _pct(rates.get("fallback")), "", "kpi-fallback"),
        _card("LLM-fallback rate", _pct(rates.get("llm_fallback")), "", "kpi-llm"),
        _card("Response p50 / p95", f"{_ms(response.get('p50'))} / {_ms(response.get('p95'))}", "", "kpi-latency"),
        _card("Satisfaction", _pct(satisfaction.get("rate")),  # words, not emoji: not every font has them
              f"{satisfaction.get('good', 0)} good · {satisfaction.get('bad', 0)} bad "
              f"of {satisfaction.get('asked', 0)} asked", "kpi-satisfaction"),
        _card("Bank links made", str(totals.get("bank_links", 0)), "", "kpi-links"),
    ])
    per_day = kpis.get("per_day") or []
    day_chart = _bar_chart([(row["day"][5:], row["conversations"]) for row in per_day], "Conversations per day")
    msg_chart = _bar_chart([(row["day"][5:], row["messages"]) for row in per_day], "Messages per day")
    confirmations = kpis.get("confirmations") or {}
    conf_chart = _bar_chart(list(confirmations.items()), "Confirmations")
    money = kpis.get("money_movements") or {}
    money_rows = "".join(f"<tr><td>{_e(kind)}</td><td>{v.get('executed', 0)}</td><td>{v.get('failed', 0)}</td></tr>"
                         for kind, v in money.items())
    form_parts = []
    for name, form in (kpis.get("forms") or {}).items():
        steps = [(s["step"], s["dropped"]) for s in form.get("steps", [])]
        form_parts.append(
            f"<div class='form'><h4>{_e(name)}: {form.get('completed', 0)}/{form.get('started', 0)} completed "
            f"({_pct(form.get('completion_rate'))}), {form.get('refused', 0)} refused, "
            f"{form.get('cancelled', 0)} cancelled, {form.get('abandoned', 0)} abandoned</h4>"
            f"{_bar_chart(steps, 'Drop-off by step (last question asked)') if steps else ''}</div>")
    months = "".join(f"<tr><td>{_e(row['month'])}</td><td>{row['conversations']}</td><td>{row['sessions']}</td>"
                     f"<td>{row['active_customers']}</td><td>{row['messages']}</td></tr>"
                     for row in kpis.get("per_month") or [])
    period = f"{kpis.get('since') or 'start'} – {kpis.get('until') or 'now'}"
    return f"""<section id="kpis"><h2>Conversation KPIs <span class="muted">{_e(period)}</span></h2>
<div class="cards">{cards}</div>
<div class="charts">{day_chart}{msg_chart}{conf_chart}</div>
<h3>Per month</h3><table><thead><tr><th>Month</th><th>Conversations</th><th>Sessions</th><th>Active customers</th>
<th>Messages</th></tr></thead><tbody>{months}</tbody></table>
<h3>Money movements</h3><table><thead><tr><th>Kind</th><th>Executed</th><th>Failed</th></tr></thead>
<tbody>{money_rows}</tbody></table>
<h3>Forms</h3><div class="charts">{''.join(form_parts) or '<p>No form runs.</p>'}</div>
<p class="hint">Definitions: <code>analytics/kpis.py</code>.
Update with <code>make kpis SINCE=2026-03-01 UNTIL=2026-03-31</code>.</p>
</section>"""


def _compare_section() -> str:
    return f"""<section id="compare"><h2>Compare two NLU pipelines</h2>
<p>Rasa trains each configuration on growing shares of the training data and plots their F1 side by side:</p>
<pre><code>make compare-pipelines CONFIGS="config.yml other_config.yml"
# which runs
{_e(COMPARE_COMMAND)}</code></pre>
<p>Result: <a href="compare/nlu_model_comparison_graph.pdf">compare/nlu_model_comparison_graph.pdf</a>
and <a href="compare/">compare/</a> (one report per configuration and run).</p></section>"""


# ---------------------------------------------------------------- small pieces

def _card(title: str, value: str, note: str, ident: str) -> str:
    return (f'<div class="card" id="{_e(ident)}"><div class="title">{_e(title)}</div>'
            f'<div class="value">{_e(value)}</div><div class="note">{note}</div></div>')


def _delta(latest: Mapping[str, Any] | None, previous: Mapping[str, Any] | None, key: str, *,
           lower_is_better: bool = False, digits: int = 3) -> str:
    if not latest or not previous:
        return '<span class="muted">no earlier run</span>'
    now, before = latest.get(key), previous.get(key)
    if not isinstance(now, (int, float)) or not isinstance(before, (int, float)):
        return ""
    change = now - before
    if abs(change) < 10 ** -(digits + 1):
        return f'<span class="muted">= since {_e(previous.get("commit") or "last run")}</span>'
    better = (change < 0) if lower_is_better else (change > 0)
    arrow = "▲" if change > 0 else "▼"
    return (f'<span class="{"up" if better else "down"}">{arrow} {change:+.{digits}f}</span>'
            f' <span class="muted">since {_e(previous.get("commit") or "last run")}</span>')


def _num_cell(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return '<td data-value="-1">–</td>'
    return f'<td data-value="{value:.6f}">{value:.3f}</td>'


def _image(path: Path, title: str) -> str:
    if not path.exists():
        return f'<figure><figcaption>{_e(title)}</figcaption><p class="muted">{_e(path.name)} is missing</p></figure>'
    relative = f"{path.parent.name}/{path.name}"
    return (f'<figure><figcaption>{_e(title)}</figcaption><a href="{_e(relative)}">'
            f'<img src="{_e(relative)}" alt="{_e(title)}"></a></figure>')


def _bar_chart(items: Sequence[tuple[str, float]], title: str) -> str:
    if not items:
        return ""
    width, bar, gap, top = 360, 22, 6, 24
    largest = max((value for _, value in items), default=0) or 1
    height = top + len(items) * (bar + gap)
    bars = []
    for index, (label, value) in enumerate(items):
        y = top + index * (bar + gap)
        length = 0 if not value else max(2, (width - 170) * value / largest)
        bars.append(f'<text x="0" y="{y + 15}" class="label">{_e(str(label))}</text>'
                    f'<rect x="110" y="{y}" width="{length:.1f}" height="{bar}" rx="3"></rect>'
                    f'<text x="{115 + length:.1f}" y="{y + 15}" class="label">{_e(_plain(value))}</text>')
    return (f'<figure class="chart"><svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'role="img" aria-label="{_e(title)}"><text x="0" y="14" class="chart-title">{_e(title)}</text>'
            f'{"".join(bars)}</svg></figure>')


def _line_chart(values: Sequence[float], title: str) -> str:
    if len(values) < 2:
        return ""
    width, height, pad = 420, 140, 24
    low, high = min(values), max(values)
    span = (high - low) or 1
    points = " ".join(f"{pad + i * (width - 2 * pad) / (len(values) - 1):.1f},"
                      f"{height - pad - (v - low) * (height - 2 * pad) / span:.1f}" for i, v in enumerate(values))
    return (f'<figure class="chart"><svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{_e(title)}"><text x="0" y="14" class="chart-title">{_e(title)}</text>'
            f'<polyline points="{points}" class="line"></polyline>'
            f'<text x="{width - pad}" y="{height - 4}" class="label" text-anchor="end">{values[-1]:.3f}</text>'
            f'</svg></figure>')


def _missing(title: str, message: str) -> str:
    return f'<section><h2>{_e(title)}</h2><p class="muted">{_e(message)}</p></section>'


def _macro(report: Mapping[str, Any]) -> float | None:
    macro = report.get("macro avg")
    if isinstance(macro, Mapping) and isinstance(macro.get("f1-score"), (int, float)):
        return float(macro["f1-score"])
    return None


def _fmt(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "–"


def _pct(value: Any) -> str:
    return f"{value * 100:.1f} %" if isinstance(value, (int, float)) else "–"


def _ms(value: Any) -> str:
    return f"{value:.0f} ms" if isinstance(value, (int, float)) else "–"


def _plain(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def _round(value: Any) -> float | None:
    return round(float(value), 4) if isinstance(value, (int, float)) else None


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


STYLE = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2530;background:#f4f6f8}
header{background:#0b5d4b;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.85}main{padding:8px 28px 40px;max-width:1280px}
section{background:#fff;border-radius:10px;padding:16px 20px;margin:16px 0;box-shadow:0 1px 3px rgba(0,0,0,.08)}
h2{margin:0 0 10px;font-size:18px}h3{font-size:15px;margin:18px 0 6px}h4{font-size:14px;margin:8px 0}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #dde3e8;border-radius:8px;padding:10px 14px;
min-width:150px}.card .title{font-size:12px;color:#5b6b7a;text-transform:uppercase;letter-spacing:.03em}
.card .value{font-size:26px;font-weight:600}.card .note{font-size:12px;min-height:16px}
.up{color:#0a7d32;font-weight:600}.down{color:#b42318;font-weight:600}.muted{color:#7b8794;font-weight:400}
table{border-collapse:collapse;width:100%;margin:6px 0;font-size:14px}th,td{padding:5px 8px;
border-bottom:1px solid #e6eaee;text-align:left}th{background:#f0f3f5;position:sticky;top:0}
table.sortable th{cursor:pointer;user-select:none}table.sortable th:after{content:" ⇅";color:#9aa5b1}
tr.low td{background:#fff4e5}.images,.charts{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:8px 0}figure img{max-width:600px;width:100%;border:1px solid #e6eaee}
figcaption{font-weight:600;font-size:13px;margin-bottom:4px}svg rect{fill:#1f8a70}
svg .label{font-size:12px;fill:#1d2530}svg .chart-title{font-size:13px;font-weight:600;fill:#1d2530}
svg .line{fill:none;stroke:#1f8a70;stroke-width:2.5}li.broke{background:#fde7e7;font-weight:600}
details{margin:6px 0}summary{cursor:pointer;font-weight:600}pre{background:#f0f3f5;padding:10px;overflow:auto}
.ok{color:#0a7d32;font-weight:600}.hint{color:#5b6b7a;font-size:13px}
"""

SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, column) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var ascending = th.getAttribute('data-order') !== 'asc';
      table.querySelectorAll('th').forEach(function (other) { other.removeAttribute('data-order'); });
      th.setAttribute('data-order', ascending ? 'asc' : 'desc');
      rows.sort(function (a, b) {
        var x = a.cells[column], y = b.cells[column];
        var vx = x.getAttribute('data-value'), vy = y.getAttribute('data-value');
        var result = (vx !== null && vy !== null) ? parseFloat(vx) - parseFloat(vy)
                                                  : x.textContent.localeCompare(y.textContent);
        return ascending ? result : -result;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Banking assistant: test report and KPIs</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{style}</style></head>
<body><header><h1>Banking assistant: test report and KPIs</h1>
<p>Generated {generated} · commit <code>{commit}</code> ·
<a style="color:#fff" href="#intents">Intents</a> · <a style="color:#fff" href="#entities">Entities</a> ·
<a style="color:#fff" href="#stories">Conversation tests</a> · <a style="color:#fff" href="#history">History</a> ·
<a style="color:#fff" href="#kpis">KPIs</a> · <a style="color:#fff" href="#compare">Compare pipelines</a></p></header>
<main>{body}</main><script>{script}</script></body></html>
"""
