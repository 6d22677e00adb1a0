"""What an operator watches a runner by: the Prometheus endpoint (:mod:`.metrics`) and the
systemd readiness and watchdog pings (:mod:`.systemd`).

Both only read: figures are handed in as snapshots and callables by ``bridge.app``, which wires
them, so this package knows nothing of the fleet's internals.

May import: ``bridge.config``, ``bridge.aio``.
"""
