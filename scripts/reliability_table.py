"""Print the reliability table from the JSON records ``tests/reliability`` writes to
``.testbed-reports/`` and exit non-zero when any category failed, is missing, or a secret
form was found. Run by ``make reliability`` after the tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPORTS = Path(__file__).resolve().parents[1] / ".testbed-reports"
ROWS = (
    ("faults", "faults injected / survived"),
    ("inputs", "bad inputs tried / rejected"),
    ("secrets", "secret forms searched / found (must be 0)"),
    ("load", "concurrent runs / consistent outcomes"),
    ("builder_endpoints", "builder endpoints/inputs tried / refused"),
    ("context", "hostile build contexts / as buildx does"),
)


def row(category: str, cases: list[dict[str, object]]) -> tuple[int, int, bool]:
    passed = [c for c in cases if c["outcome"] == "passed"]
    ok = len(passed) == len(cases) and bool(cases)
    if category == "secrets":
        searched = sum(int(str(c.get("forms_searched", 0))) for c in cases)
        found = sum(int(str(c.get("forms_found", 0))) for c in cases)
        return searched, found, ok and found == 0 and searched > 0
    if category == "load":
        runs = sum(int(str(c.get("runs", 0))) for c in cases)
        consistent = sum(int(str(c.get("consistent", 0))) for c in passed)
        return runs, consistent, ok and runs == consistent
    return len(cases), len(passed), ok


def main() -> int:
    failed = False
    lines = [f"{'category':<44} {'tried':>7} {'result':>7}  status", "-" * 70]
    for category, title in ROWS:
        path = REPORTS / f"reliability-{category}.json"
        if not path.exists():
            lines.append(f"{title:<44} {'-':>7} {'-':>7}  MISSING ({path.name})")
            failed = True
            continue
        everything = json.loads(path.read_text())["cases"]
        # Skipped only by the engines marker: a case that cannot run on one engine (its
        # reason names the engine); listed, never counted as tried.
        skipped = [c for c in everything if c["outcome"] == "skipped"]
        cases = [c for c in everything if c["outcome"] != "skipped"]
        tried, result, ok = row(category, cases)
        failed |= not ok
        lines.append(f"{title:<44} {tried:>7} {result:>7}  {'ok' if ok else 'FAIL'}")
        lines += [f"    failed: {c['case']}" for c in cases if c["outcome"] != "passed"]
        lines += [f"    not on this engine: {c['case']}" for c in skipped]
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
