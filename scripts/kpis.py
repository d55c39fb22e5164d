"""Conversation KPIs for a period, from the analytics store (`make kpis`).

    python scripts/kpis.py [--since 2026-03-01] [--until 2026-03-31] [--out results/kpis.json]

Reads the records the analytics event broker wrote (MongoDB's analytics_events with
MONGODB_URI, otherwise build/analytics/events.jsonl or ANALYTICS_PATH), prints the KPIs,
writes them as JSON and redraws results/index.html with them (analytics/report_page.py).
Dates are Lagos days; --until is inclusive.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from analytics.kpis import compute, format_text, parse_when
from analytics.store import open_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--since", help="first day (YYYY-MM-DD) or ISO time")
    parser.add_argument("--until", help="last day, inclusive (YYYY-MM-DD) or ISO time, exclusive")
    parser.add_argument("--path", help="the analytics file (default: ANALYTICS_PATH or build/analytics/events.jsonl)")
    parser.add_argument("--out", type=Path, default=Path("results/kpis.json"))
    parser.add_argument("--results", type=Path, default=Path("results"), help="where the report page lives")
    parser.add_argument("--no-page", action="store_true", help="do not redraw results/index.html")
    args = parser.parse_args(argv)

    since, until = parse_when(args.since), parse_when(args.until, end=True)
    store = open_store(path=args.path)
    report = compute(store.read(since, until), since, until)
    print(f"Analytics from {store.describe()}")
    print(format_text(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"Wrote {args.out}")
    if not args.no_page:
        from analytics.report_page import write_page

        page = write_page(args.results)
        print(f"Wrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
