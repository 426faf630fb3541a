"""Real-browser tests of the storefront: a throwaway Flashline stack, then ``node --test`` on it.

    python tests/browser/run.py [test files ...] [--keep]     # or: make test-browser

Provisions its own databases, RabbitMQ vhost, dev keys and free ports (it never touches what
`make run` uses), starts the three services, one gateway and the storefront, runs the Playwright
tests (playwright-core driving the system's Chromium, headless), then tears everything down.
The tests find the system through environment variables (STOREFRONT_URL, CATALOG_URL, ...), and
restart the gateway through a small control endpoint of this launcher (FLASHLINE_TEST_CONTROL_URL).
Screenshots land in test-artifacts/browser/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The browser to drive: $CHROMIUM_PATH, else the first Chromium on PATH."""
    explicit = os.environ.get("CHROMIUM_PATH")
    if explicit:
        return explicit if Path(explicit).exists() else None
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def missing_prerequisites() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if find_chromium() is None:
        return "Chromium is not installed (apt-get install chromium, or set CHROMIUM_PATH)"
    if shutil.which("node") is None:
        return "node is not installed"
    if not (ROOT / "node_modules" / "playwright-core").is_dir():
        return "node_modules/playwright-core is missing (run `make install`)"
    return None


def test_files(selected: Sequence[str] = ()) -> list[Path]:
    if selected:
        return [Path(s).resolve() for s in selected]
    return sorted(HERE.glob("*.test.mjs"))


class BrowserStack:
    """The whole system on throwaway databases, vhost, keys and ports; a context manager."""

    def __init__(self, *, echo: bool = False, extra_env: dict[str, dict[str, str]] | None = None) -> None:
        self.echo = echo
        self.extra_env = extra_env or {}
        self.group = None
        self.config = None
        self._dbs = None
        self._vhost = None
        self._keys: tempfile.TemporaryDirectory[str] | None = None
        self._control: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    # ---- lifecycle ----

    def __enter__(self) -> BrowserStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        from flashline_devstack.processes import ProcessGroup
        from flashline_devstack.stack import SERVICES, StackConfig, provision, start

        from flashline_auth.dev import ensure_dev_keys
        from flashline_service.testing import ThrowawayDatabases, ThrowawayVhost, free_port

        run_id = uuid.uuid4().hex[:8]
        self._keys = tempfile.TemporaryDirectory(prefix="flashline-browser-keys-")
        keys_dir = ensure_dev_keys(Path(self._keys.name))
        self._vhost = ThrowawayVhost(f"flashline-browser-{run_id}")
        self._vhost.create()
        self._dbs = ThrowawayDatabases(f"flashline_browser_{run_id}")
        self.config = StackConfig(
            keys_dir=keys_dir,
            vhost=self._vhost.name,
            database_urls={svc: self._dbs.create(svc) for svc in SERVICES},
            ports={svc: free_port() for svc in SERVICES},
            gateway_ports=[free_port()],
            storefront_port=free_port(),
            environment="test",
            extra_env=self._extra_env(),
        )
        provision(self.config, create_databases=False)
        self.group = ProcessGroup(echo=self.echo)
        start(self.config, self.group)
        self._start_control()

    def _extra_env(self) -> dict[str, dict[str, str]]:
        env = {
            # a restarted gateway lets its clients go at once (the default drain spreads them over 20 s)
            "gateway": {"GATEWAY_DRAIN_SECONDS": "0.5"},
            "storefront": {"STOREFRONT_LOG_LEVEL": "warning"},
        }
        for process, values in self.extra_env.items():
            env[process] = {**env.get(process, {}), **values}
        return env

    def stop(self) -> None:
        if self._control is not None:
            self._control.shutdown()
            self._control.server_close()
            self._control = None
        if self.group is not None:
            self.group.stop_all()
            self.group = None
        if self._dbs is not None:
            self._dbs.drop_all()
            self._dbs = None
        if self._vhost is not None:
            self._vhost.delete()
            self._vhost = None
        if self._keys is not None:
            self._keys.cleanup()
            self._keys = None

    # ---- what the tests get ----

    def env(self) -> dict[str, str]:
        assert self.config is not None and self._control is not None
        host, port = self._control.server_address[:2]
        return {
            "STOREFRONT_URL": f"{self.config.storefront_url}/",
            "CATALOG_URL": self.config.service_url("catalog"),
            "ORDERS_URL": self.config.service_url("orders"),
            "CART_URL": self.config.service_url("cart"),
            "GATEWAY_URL": f"ws://127.0.0.1:{self.config.gateway_ports[0]}/connection/websocket",
            "FLASHLINE_TEST_CONTROL_URL": f"http://{host}:{port}",
            "CHROMIUM_PATH": find_chromium() or "",
            "FLASHLINE_TEST_ARTIFACTS": str(ARTIFACTS),
        }

    def run_node(self, files: Sequence[Path], extra: Sequence[str] = ()) -> int:
        """``node --test`` on the given files, one after another; returns its exit code."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        command = ["node", "--test", "--test-concurrency=1", *extra, *[str(f) for f in files]]
        code = subprocess.call(command, cwd=ROOT, env={**os.environ, **self.env()})
        if code != 0:
            self.dump_logs()
        return code

    def dump_logs(self, lines: int = 40) -> None:
        if self.group is None:
            return
        for proc in self.group.procs.values():
            print(f"--- last lines of {proc.name}", file=sys.stderr)
            print("\n".join(proc.lines[-lines:]), file=sys.stderr)

    # ---- the control endpoint: the gateway restart test stops and starts the gateway through it ----

    def gateway(self, action: str) -> dict[str, object]:
        from flashline_devstack.stack import start_gateways

        assert self.group is not None and self.config is not None
        with self._lock:
            if action == "stop":
                self.group.stop("gateway")
            elif action == "start":
                proc = self.group.procs.get("gateway")
                if proc is None or proc.popen is None or proc.popen.poll() is not None:  # not running
                    start_gateways(self.config, self.group)
            else:
                raise ValueError(action)
        return {"gateway": action, "ok": True}

    def _start_control(self) -> None:
        stack = self

        class Control(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")
                try:
                    if len(parts) != 2 or parts[0] != "gateway":
                        raise ValueError(self.path)
                    body, status = stack.gateway(parts[1]), 200
                except ValueError:
                    body, status = {"detail": f"unknown control {self.path}"}, 404
                except Exception as exc:  # noqa: BLE001 - reported to the test
                    body, status = {"detail": str(exc)}, 500
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._control = ThreadingHTTPServer(("127.0.0.1", 0), Control)
        threading.Thread(target=self._control.serve_forever, daemon=True).start()


def main(argv: Sequence[str]) -> int:
    keep = "--keep" in argv
    files = [a for a in argv if not a.startswith("--")]
    why = missing_prerequisites()
    if why:
        print(f"browser tests: skipped: {why}")
        return 0
    with BrowserStack(echo=os.environ.get("FLASHLINE_BROWSER_ECHO") == "1") as stack:
        code = stack.run_node(test_files(files))
        if keep:
            print("the stack keeps running (Ctrl-C stops it):")
            for key, value in stack.env().items():
                print(f"  {key}={value}")
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                pass
    print(f"screenshots: {ARTIFACTS.relative_to(ROOT)}/")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
