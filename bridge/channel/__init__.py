"""An agent's chat channel beyond the mirror: inbound steering with access control, the
``/agent`` command, the live per-turn status line, and the bridge that wires them to a backend.

May import: ``bridge.chat``, ``bridge.config``, ``bridge.store``, ``bridge.fleet``,
``bridge.lifecycle``, ``bridge.render``.
"""
