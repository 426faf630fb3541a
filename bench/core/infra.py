"""CPU seconds of the machine's RabbitMQ and Postgres, which a full-path run loads as much as the services.

Both run outside the bench (system services), so they are found by process name. Postgres forks
a backend per connection: the postmaster's reaped-children times count the backends that exited
between two readings, the live ones are read directly.
"""

from __future__ import annotations

import psutil

_NAMES = {"beam.smp": "rabbitmq", "postgres": "postgres"}


def cpu_seconds() -> dict[str, float]:
    """User + system CPU seconds so far of each infrastructure process group, by name."""
    totals = dict.fromkeys(_NAMES.values(), 0.0)
    for proc in psutil.process_iter(["name"]):
        group = _NAMES.get(proc.info["name"] or "")
        if group is None:
            continue
        try:
            times = proc.cpu_times()
            parent = proc.parent()
            postmaster = group == "postgres" and (parent is None or parent.name() != "postgres")
        except psutil.Error:  # exited between the listing and the reading
            continue
        totals[group] += times.user + times.system
        if postmaster:
            totals[group] += times.children_user + times.children_system
    return totals
