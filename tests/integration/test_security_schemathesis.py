"""schemathesis against each running service's OpenAPI: generated requests never get a 5xx.

Positive (schema-valid) and negative (schema-violating) cases, as a customer and as staff,
bounded per operation so the whole module stays well under a minute. Every 5xx is collected
with a curl line to reproduce it, and the test reports them all at once.
"""

from __future__ import annotations

import os
import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from .conftest import Stack

SERVICES = ("catalog", "orders", "cart")
SCALE = int(os.environ.get("FLASHLINE_FUZZ_SCALE", "1"))  # e.g. 10 for a deeper (unbounded-time) hunt
RUNS = [
    ("customer", "alice", GenerationMode.POSITIVE, 20),
    ("customer", "alice", GenerationMode.NEGATIVE, 15),
    ("staff", "carol", GenerationMode.POSITIVE, 15),
]


def _fuzz(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    examples: int,
    base_url: str,
    headers: dict[str, str],
    session: requests.Session,
    failures: dict[str, str],
    statuses: set[int],
) -> int:
    calls = 0

    @settings(
        max_examples=examples * SCALE,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        nonlocal calls
        calls += 1
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=10)
        statuses.add(response.status_code)
        if response.status_code >= 500:
            key = f"{operation.method.upper()} {operation.path} -> {response.status_code}"
            failures.setdefault(key, f"{case.as_curl_command(headers=headers)}\n{response.text[:300]}")

    run()
    return calls


@pytest.mark.parametrize("service", SERVICES)
def test_no_server_errors(stack: Stack, service: str) -> None:
    base_url = stack.url(service)
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: dict[str, str] = {}
    statuses: set[int] = set()
    counted = 0
    started = time.monotonic()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            for role, user, mode, examples in RUNS:
                counted += _fuzz(
                    operation, mode, examples, base_url, stack.auth(user, role), session, failures, statuses
                )
    elapsed = time.monotonic() - started
    assert counted > 0
    assert any(200 <= code < 300 for code in statuses), statuses  # the tokens did work somewhere
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
    assert SCALE > 1 or elapsed < 60, f"{service}: {counted} requests took {elapsed:.0f}s"
