"""The hook relay: the command the agent CLIs run on each hook event (``agentbridge hook``), the
client that forwards its payload over a unix socket, and the runner's server with per-launch tokens.

May import: ``bridge.store``, ``bridge.config``, ``bridge.errors``. The client side imports
nothing heavy: it runs inside every hook call of every agent.
"""
