"""The storefront's real-browser tests as a pytest suite (``make test`` runs them when Chromium is present).

One throwaway stack for the module (tests/browser/run.py), then each ``*.test.mjs`` as its own test
under ``node --test``. Skipped cleanly where Chromium, node or playwright-core is missing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _load_launcher():
    spec = importlib.util.spec_from_file_location("flashline_browser_launcher", HERE / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


launcher = _load_launcher()
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser_stack() -> Iterator[object]:
    why = launcher.missing_prerequisites()
    if why:
        pytest.skip(why)
    with launcher.BrowserStack() as stack:
        yield stack


@pytest.mark.parametrize("spec", launcher.test_files(), ids=lambda p: p.name.removesuffix(".test.mjs"))
def test_in_chromium(browser_stack, spec: Path) -> None:
    code = browser_stack.run_node([spec])
    assert code == 0, f"node --test {spec.name} failed (its output and the services' logs are above)"
