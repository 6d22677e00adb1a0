"""What an agent is doing and what it gets next: the activity machine, the durable prompt
queue's delivery at turn boundaries, pasting into the pane (steer: the one chokepoint for
keystrokes), the compaction guard and cron schedules.

May import: ``bridge.config``, ``bridge.store``, ``bridge.fleet``, ``bridge.hooks``,
``bridge.mirror`` (turn routing), ``runtimes``.
"""
