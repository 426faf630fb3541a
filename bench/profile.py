"""Run one scenario with py-spy recording every gateway process: flame graphs into bench/results/.

    python -m bench.profile connect_storm --clients 2000     # -> bench/results/profile-gateway-N.svg

py-spy samples the gateway (and the services, in full-path scenarios) from outside (250 Hz,
non-blocking), so the figures of a profiled run are a little worse than a plain one's.
``BENCH_PROFILE_FORMAT=speedscope`` writes JSON instead, ``raw`` collapsed stacks (text).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench.core.main import SCENARIOS, run_single


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in SCENARIOS:
        raise SystemExit(f"usage: python -m bench.profile <scenario> [flags]; scenarios: {', '.join(SCENARIOS)}")
    name = sys.argv[1]
    folder = Path(os.environ.get("BENCH_RESULTS", "bench/results"))
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["BENCH_PROFILE_DIR"] = str(folder)
    run_single(name, sys.argv[2:])


if __name__ == "__main__":
    main()
