"""Transcript to chat: tailing transcript files from a stored offset, the per-agent mirror that
posts through the ledger exactly once, the fleet watcher that wakes the right mirror, and turn
routing (which thread a turn belongs in).

May import: ``bridge.config``, ``bridge.store``, ``bridge.render``, ``bridge.chat`` (the
protocol), ``bridge.fleet`` (launch context), ``runtimes``.
"""
