"""PR reviewers, first class: a review per pull request head, asked for from Slack
(``/agent review``), the command line (``agentbridge review``) or a ``gh`` poll, run as a
one-shot copy of a reviewer template in its own git worktree, threaded under one header message,
and cleaned up after ``keep_for``.

May import: ``bridge.config``, ``bridge.store``, ``bridge.chat``, ``bridge.channel`` (the
steering access rule), ``bridge.mirror`` (turn routing, to thread a reviewer under its header).
``bridge.app`` wires it to the runner.
"""
