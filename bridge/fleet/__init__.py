"""Keeping the fleet running in tmux: the tmux wrapper, process liveness, the launch context of
an agent (environment, binary, resume) and the reconciler that adopts, launches and relaunches.

May import: ``bridge.config``, ``bridge.store``, ``bridge.errors``, ``runtimes``.
"""
