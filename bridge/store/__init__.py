"""Durable state: the SQLite database (agents, launches, offsets, hook tokens), the delivery
ledger that ties a transcript offset to the Slack posts made from it, and the prompt queue.

May import: ``bridge.config``, ``bridge.errors``. Never ``chat``, ``fleet``, ``mirror`` or ``app``.
"""
