"""Demo products, created through the catalog API with a dev staff token so `make run` shows a live shop.

Idempotent: a sku that already exists (409) is left alone, so running it again changes nothing.
One product is an upcoming drop whose sale opens ``drop_in`` seconds after it is first seeded.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

SEED_USER = "storefront-seed"


@dataclass(frozen=True)
class DemoProduct:
    sku: str
    name: str
    price_cents: int
    stock: int
    currency: str = "EUR"
    drop: bool = False  # opens for sale `drop_in` seconds after seeding


DEMO_PRODUCTS: tuple[DemoProduct, ...] = (
    DemoProduct("FL-AERO-RUNNER", "Aero Runner 2", 12900, 40),
    DemoProduct("FL-DRIFT-HOODIE", "Drift Hoodie", 6900, 4),
    DemoProduct("FL-TRAIL-CAP", "Trail Cap", 2900, 120),
    DemoProduct("FL-NIMBUS-SOCKS", "Nimbus Socks (3-pack)", 1500, 12),
    DemoProduct("FL-VOLT-DUNK-DROP", "Volt Dunk Low (limited drop)", 18900, 25, drop=True),
)


class SeedError(RuntimeError):
    """The catalog refused or could not be reached."""


def _call(method: str, url: str, body: dict[str, object] | None, token: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, {"detail": text}


def seed_catalog(
    catalog_url: str,
    keys_dir: str | Path,
    *,
    drop_in: float = 60.0,
    products: tuple[DemoProduct, ...] = DEMO_PRODUCTS,
    attempts: int = 20,
    log: Callable[[str], object] = print,
) -> dict[str, int | None]:
    """Create the missing demo products; returns sku -> id (None for skus that already existed)."""
    from flashline_auth.dev_identity import user_token

    token = user_token(str(keys_dir), user=SEED_USER, role="staff", ttl_seconds=600)
    opens = datetime.now(UTC) + timedelta(seconds=drop_in)
    result: dict[str, int | None] = {}
    for product in products:
        body: dict[str, object] = {
            "sku": product.sku,
            "name": product.name,
            "price_cents": product.price_cents,
            "currency": product.currency,
            "stock": product.stock,
        }
        if product.drop:
            body["sale_starts_at"] = opens.isoformat()
        for attempt in range(attempts):
            try:
                status, answer = _call("POST", f"{catalog_url.rstrip('/')}/products", body, token)
                break
            except OSError as exc:  # the catalog is still starting: retry briefly
                if attempt == attempts - 1:
                    raise SeedError(f"catalog unreachable at {catalog_url}: {exc}") from exc
                time.sleep(0.5)
        if status == 201:
            result[product.sku] = int(answer["id"])  # type: ignore[call-overload]
            when = f", on sale at {opens:%H:%M:%S} UTC" if product.drop else ""
            log(f"seeded {product.sku} (id {answer['id']}, {product.stock} units{when})")
        elif status == 409:
            result[product.sku] = None
        else:
            raise SeedError(f"POST /products {product.sku} -> {status}: {answer.get('detail', answer)}")
    existing = [sku for sku, pid in result.items() if pid is None]
    if existing:
        log(f"demo products already present: {', '.join(existing)}")
    return result


def reschedule_drops(
    catalog_url: str,
    keys_dir: str | Path,
    *,
    drop_in: float = 60.0,
    products: tuple[DemoProduct, ...] = DEMO_PRODUCTS,
    log: Callable[[str], object] = print,
) -> int:
    """Move the sale start of the demo drops that exist to ``drop_in`` seconds from now (for another demo)."""
    from flashline_auth.dev_identity import user_token

    token = user_token(str(keys_dir), user=SEED_USER, role="staff", ttl_seconds=600)
    base = catalog_url.rstrip("/")
    drops = {p.sku for p in products if p.drop}
    opens = datetime.now(UTC) + timedelta(seconds=drop_in)
    moved, cursor = 0, None
    while True:
        status, page = _call("GET", f"{base}/products?limit=100" + (f"&cursor={cursor}" if cursor else ""), None, token)
        if status != 200:
            raise SeedError(f"GET /products -> {status}: {page.get('detail', page)}")
        for item in page.get("items", []):  # type: ignore[union-attr]
            if item["sku"] in drops:
                body = {"name": item["name"], "price_cents": item["price_cents"], "sale_starts_at": opens.isoformat()}
                status, answer = _call("PUT", f"{base}/products/{item['id']}", body, token)
                if status != 200:
                    raise SeedError(f"PUT /products/{item['id']} -> {status}: {answer.get('detail', answer)}")
                log(f"{item['sku']} (id {item['id']}) now opens at {opens:%H:%M:%S} UTC")
                moved += 1
        cursor = page.get("next_cursor")
        if not cursor:
            return moved
