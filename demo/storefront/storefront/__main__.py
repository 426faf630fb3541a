"""``python -m storefront``: build the bundle if needed and serve the storefront (port 8080).

``python -m storefront seed``: create the demo products through the catalog API (idempotent).
"""

from __future__ import annotations

import argparse
import sys

from storefront.settings import StorefrontSettings


def serve(settings: StorefrontSettings) -> None:
    import uvicorn

    from storefront.app import build_app
    from storefront.bundle import BundleError, ensure_bundle

    if settings.build_on_start:
        try:
            if ensure_bundle(settings.static_dir):
                print("storefront: bundle built", flush=True)
        except BundleError as exc:
            sys.exit(f"storefront: {exc}")
    print(f"storefront: http://{settings.host}:{settings.port}/ ({settings.environment})", flush=True)
    uvicorn.run(build_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level)


def main() -> None:
    parser = argparse.ArgumentParser(prog="storefront")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve the storefront (the default)")
    seed = sub.add_parser("seed", help="create the demo products through the catalog API (idempotent)")
    seed.add_argument("--catalog-url", help="default: STOREFRONT_CATALOG_URL or http://127.0.0.1:8001")
    seed.add_argument("--drop-in", type=float, default=60.0, help="seconds until the upcoming drop opens")
    seed.add_argument("--redrop", action="store_true", help="also move an existing drop's sale start to --drop-in")
    sub.add_parser("build", help="build the front-end bundle now")
    args = parser.parse_args()
    settings = StorefrontSettings.from_env()
    if args.command == "seed":
        from storefront.seed import SeedError, reschedule_drops, seed_catalog

        url = args.catalog_url or settings.catalog_url
        try:
            created = seed_catalog(url, settings.dev_keys_dir, drop_in=args.drop_in)
            if args.redrop and any(pid is None for pid in created.values()):
                reschedule_drops(url, settings.dev_keys_dir, drop_in=args.drop_in)
        except SeedError as exc:
            sys.exit(f"storefront seed: {exc}")
    elif args.command == "build":
        from storefront.bundle import BundleError, ensure_bundle, is_stale

        try:
            built = ensure_bundle(settings.static_dir)
        except BundleError as exc:
            sys.exit(f"storefront: {exc}")
        print("bundle built" if built else ("bundle up to date" if not is_stale(settings.static_dir) else "?"))
    else:
        serve(settings)


if __name__ == "__main__":
    main()
