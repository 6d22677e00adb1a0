"""Several hosts, one Slack app, one shared Postgres (``docs/scaling.md``): which agents this
runner owns, its heartbeat and the down/back notices, and the routing of inbound events
(messages, ``/agent`` commands, clicks) to the runner that owns their agent.

May import: ``config``, ``store``, ``chat`` (and the leaves). ``app`` wires it in.
"""
