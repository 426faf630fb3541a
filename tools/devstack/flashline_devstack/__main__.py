"""``python -m flashline_devstack run [--gateways N]``: what `make run` does."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time

from flashline_devstack.infra import InfrastructureMissing
from flashline_devstack.processes import ProcessGroup
from flashline_devstack.stack import StackConfig, provision, seed, start


def main() -> None:
    parser = argparse.ArgumentParser(prog="flashline-dev")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="provision and start the whole system")
    run.add_argument("--gateways", type=int, default=1, help="gateway processes on ports 8000, 8010, 8020, ...")
    run.add_argument("--storefront-port", type=int, default=8080, help="the storefront demo (0: do not serve it)")
    run.add_argument("--no-seed", action="store_true", help="do not create the demo products")
    sub.add_parser("provision", help="databases, vhost, keys and migrations only")
    args = parser.parse_args()

    config = StackConfig()
    try:
        provision(config)
    except InfrastructureMissing as exc:
        sys.exit(f"flashline: {exc}")
    if args.command == "provision":
        return
    config.gateway_ports = [8000 + 10 * i for i in range(args.gateways)]
    config.storefront_port = args.storefront_port or None
    group = ProcessGroup()

    def stop(*_: object) -> None:
        print("\nstopping ...", flush=True)
        group.stop_all()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        start(config, group)
    except RuntimeError as exc:
        group.stop_all()
        sys.exit(f"flashline: {exc}")
    if config.storefront_port and not args.no_seed:
        try:
            seed(config)
        except subprocess.CalledProcessError:
            print("flashline: seeding the demo products failed (see above); the stack keeps running", flush=True)
    gateways = ", ".join(f"ws://127.0.0.1:{p}/connection/websocket" for p in config.gateway_ports)
    storefront = f"  storefront {config.storefront_url}/  (open it in two windows)\n" if config.storefront_url else ""
    print(
        "\nFlashline is up:\n"
        f"  catalog  {config.service_url('catalog')}/docs\n"
        f"  orders   {config.service_url('orders')}/docs\n"
        f"  cart     {config.service_url('cart')}/docs\n"
        f"  gateway  {gateways}\n"
        f"{storefront}"
        "Ctrl-C stops everything.\n",
        flush=True,
    )
    while True:
        exited = group.any_exited()
        if exited is not None:
            print(f"{exited.name} exited with {exited.popen.returncode if exited.popen else '?'}; stopping", flush=True)
            group.stop_all()
            sys.exit(1)
        time.sleep(0.5)


if __name__ == "__main__":
    main()
