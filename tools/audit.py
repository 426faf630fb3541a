"""Known vulnerabilities in the locked dependencies: pip-audit against the OSV database.

Reads the exact pins of requirements.lock (no resolver, no pip) and asks OSV about each. Exits
0 when clean and 1 when a pinned version has a known vulnerability. When OSV cannot be reached
(a machine without internet access, like this project's CI) it says so loudly and exits 2, or 0
if ``FLASHLINE_AUDIT_OFFLINE_OK=1``: an unreachable database must never read as "no findings".
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

OSV_HOST = "api.osv.dev"
ROOT = Path(__file__).resolve().parents[1]


def osv_reachable(timeout: float = 5.0) -> bool:
    try:
        with socket.create_connection((OSV_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def main() -> int:
    if not osv_reachable():
        print(f"audit: NOT RUN - the OSV vulnerability database ({OSV_HOST}) is unreachable from this machine")
        return 0 if os.environ.get("FLASHLINE_AUDIT_OFFLINE_OK") == "1" else 2
    command = [
        str(Path(sys.executable).parent / "pip-audit"),
        "--vulnerability-service=osv",
        "--no-deps",
        "--disable-pip",
        "--strict",
        "--progress-spinner=off",
        "-r",
        str(ROOT / "requirements.lock"),
    ]
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
