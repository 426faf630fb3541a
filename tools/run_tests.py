"""Run each package's test suite in its own pytest session and print one total.

One session per package: every package owns a ``tests`` package of its own, and each must
stay testable alone (``pytest services/cart``). Suites run one after another (this machine
has two cores and they share Postgres and RabbitMQ).

    python tools/run_tests.py [suite ...] [-- pytest args]
"""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "build" / "test-results"


def default_suites() -> list[str]:
    found = [p.parent for p in sorted(ROOT.glob("libs/*/tests")) + sorted(ROOT.glob("services/*/tests"))]
    found += [p for p in sorted((ROOT / "tests").iterdir()) if p.is_dir() and not p.name.startswith(("_", "."))]
    return [str(p.relative_to(ROOT)) for p in found]


def main(argv: list[str]) -> int:
    extra: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, extra = argv[:split], argv[split + 1 :]
    suites = argv or default_suites()
    RESULTS.mkdir(parents=True, exist_ok=True)
    totals = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failed_suites: list[str] = []
    started = time.monotonic()
    for suite in suites:
        report = RESULTS / (suite.replace("/", "_") + ".xml")
        report.unlink(missing_ok=True)
        print(f"\n==> {suite}", flush=True)
        code = subprocess.call(
            [
                sys.executable,
                "-m",
                "pytest",
                "-c",
                str(ROOT / "pyproject.toml"),
                "--rootdir",
                str(ROOT),
                f"--junit-xml={report}",
                suite,
                *extra,
            ],
            cwd=ROOT,
        )
        if code not in (0, 5):  # 5: the suite collected nothing (e.g. filtered out by -m)
            failed_suites.append(suite)
        if report.exists():
            for case in ET.parse(report).getroot().iter("testsuite"):
                tests, fails, errs, skips = (int(case.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
                totals["failed"] += fails
                totals["errors"] += errs
                totals["skipped"] += skips
                totals["passed"] += tests - fails - errs - skips
    minutes = (time.monotonic() - started) / 60
    print(f"\nsuites: {len(suites)} in {minutes:.1f} min; failing suites: {', '.join(failed_suites) or 'none'}")
    failed = totals["failed"] + totals["errors"]
    print(f"{totals['passed']} passed, {failed} failed, {totals['skipped']} skipped")
    return 1 if failed_suites or failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
