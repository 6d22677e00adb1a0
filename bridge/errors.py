"""The one exception base every agentbridge error derives from.

Callers that only want to know "agentbridge refused or failed" catch :class:`AgentbridgeError`;
the subclasses (config errors, tmux failures, an empty prompt, a second runner) live with the
code that raises them and keep their builtin bases (``ValueError``, ``RuntimeError``) so
existing ``except`` clauses keep working. Modelled on libtmux's ``exc.py``.
"""

from __future__ import annotations


class AgentbridgeError(Exception):
    """Base of every error agentbridge raises on purpose."""
