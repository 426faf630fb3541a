"""Start the services as child processes with prefixed logs; stop them all together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

COLORS = ["\033[36m", "\033[35m", "\033[33m", "\033[32m", "\033[34m", "\033[91m", "\033[96m"]
RESET = "\033[0m"


@dataclass
class Proc:
    name: str
    args: list[str]
    env: dict[str, str]
    health_url: str | None = None
    ready: Callable[[bytes], bool] | None = None  # also asked of a 200 body, when given
    popen: subprocess.Popen[bytes] | None = None
    lines: list[str] = field(default_factory=list)


class ProcessGroup:
    """Children whose output is prefixed with their name; ``stop`` sends SIGTERM, then SIGKILL."""

    def __init__(self, *, echo: bool = True, color: bool | None = None) -> None:
        self.procs: dict[str, Proc] = {}
        self._echo = echo
        self._color = sys.stdout.isatty() if color is None else color
        self._lock = threading.Lock()

    def start(
        self,
        name: str,
        args: list[str],
        *,
        env: Mapping[str, str] | None = None,
        health_url: str | None = None,
        ready: Callable[[bytes], bool] | None = None,
    ) -> Proc:
        proc = Proc(name, args, {**os.environ, **(env or {})}, health_url, ready)
        proc.popen = subprocess.Popen(
            args, env=proc.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs[name] = proc
        threading.Thread(target=self._pump, args=(proc, len(self.procs) - 1), daemon=True).start()
        return proc

    def _pump(self, proc: Proc, index: int) -> None:
        assert proc.popen is not None and proc.popen.stdout is not None
        prefix = f"{proc.name:>10} | "
        if self._color:
            prefix = f"{COLORS[index % len(COLORS)]}{prefix}{RESET}"
        for raw in proc.popen.stdout:
            line = raw.decode(errors="replace").rstrip()
            proc.lines.append(line)
            if len(proc.lines) > 50_000:  # bounded, yet long enough for a test run's assertions
                del proc.lines[:10_000]
            if self._echo:
                with self._lock:
                    print(prefix + line, flush=True)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            while proc.health_url:
                if proc.popen is not None and proc.popen.poll() is not None:
                    tail = "\n".join(proc.lines[-30:])
                    raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{tail}")
                try:
                    with urllib.request.urlopen(proc.health_url, timeout=1) as resp:
                        if resp.status == 200 and (proc.ready is None or proc.ready(resp.read())):
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{proc.name} not healthy at {proc.health_url} after {timeout:.0f}s")
                time.sleep(0.2)

    def signal(self, name: str, sig: int) -> None:
        popen = self.procs[name].popen
        if popen is not None and popen.poll() is None:
            os.killpg(popen.pid, sig)

    def stop(self, name: str, timeout: float = 15.0) -> None:
        popen = self.procs[name].popen
        if popen is None or popen.poll() is not None:
            return
        self.signal(name, signal.SIGTERM)
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(name, signal.SIGKILL)
            popen.wait(5)

    def stop_all(self, timeout: float = 15.0) -> None:
        for name in list(self.procs):
            self.signal(name, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name, proc in self.procs.items():
            if proc.popen is None:
                continue
            try:
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.signal(name, signal.SIGKILL)
                proc.popen.wait(5)

    def any_exited(self) -> Proc | None:
        return next((p for p in self.procs.values() if p.popen is not None and p.popen.poll() is not None), None)
