"""Writes results/index.html after `rasa test nlu` and `rasa test core` (`make report`).

    python scripts/report.py [--results results] [--stories tests/stories] [--screenshot results/report.png]

Appends this run's headline figures, with the commit, to results/history.jsonl (so the
page shows the change against the previous run), then renders the page from
results/nlu, results/core, the history and results/kpis.json (`make kpis`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analytics.report_page import append_history, run_summary, write_page
from analytics.screenshot import screenshot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--stories", type=Path, default=Path("tests/stories"))
    parser.add_argument("--screenshot", type=Path, help="also save a full-page PNG (headless Chromium)")
    parser.add_argument("--no-history", action="store_true", help="render only; do not record this run")
    args = parser.parse_args(argv)

    if not args.no_history:
        summary = run_summary(args.results, args.stories)
        append_history(args.results, summary)
        print(f"Run recorded: intent macro-F1 {summary['intent_macro_f1']}, "
              f"stories failed {summary['stories_failed']} of {summary['stories']} (commit {summary['commit']})")
    page = write_page(args.results)
    print(f"Report: {page.resolve().as_uri()}")
    if args.screenshot:
        if screenshot(page, args.screenshot):
            print(f"Screenshot: {args.screenshot}")
        else:
            print("No screenshot: needs /usr/bin/chromium (make browser) and the playwright package")
    return 0


if __name__ == "__main__":
    sys.exit(main())
