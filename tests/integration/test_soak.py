"""Issue 10: the end-to-end audit after a soak of mixed traffic with faults injected.

Customers edit carts, order from them or directly (retrying with the same Idempotency-Key), pay,
cancel or let the payment window close; staff restock and advance paid orders. Meanwhile the
broker goes away for a few seconds and a gateway is SIGKILLed and restarted. Official SDK
clients on all three gateways watch every product's stock, each customer's cart and orders.
Once the system has settled, every client's last state of every channel must equal the
service's, and the catalog's stock ledger must balance.

``make test`` runs it short (FLASHLINE_SOAK_SECONDS, default 30); ``make soak`` runs 120 s.
"""

from __future__ import annotations

import httpx
import pytest

from .conftest import Stack
from .faults import make_whole
from .soak import Soak, soak_seconds

pytestmark = pytest.mark.slow


async def test_soak_every_client_ends_on_the_databases_state(
    http: httpx.AsyncClient, fault_stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    soak = Soak(fault_stack, http, soak_seconds())
    try:
        await soak.timed("setup", soak.setup())
        await soak.timed("traffic", soak.traffic())
        await soak.timed("settle", soak.settle())
        problems, summary = await soak.timed("audit", soak.audit())
    finally:
        await soak.close()
        await make_whole(fault_stack)  # shared with the other fault tests: leave it whole
    with capsys.disabled():  # the audit summary shows in every run, passing or not
        print(f"\n{summary}, audit {soak.phases['audit']:.1f}s")
    assert not problems, f"{len(problems)} audit findings:\n" + "\n".join(problems[:60])
