"""``agentbridge doctor``: health checks of the box, the config, the CLIs (with a launch-flag
canary), the hooks and Slack, each a :class:`~bridge.doctor.check.Check`.

May import: ``bridge.config``, ``bridge.store``, ``bridge.fleet``, ``bridge.hooks``, ``runtimes``,
``bridge.chat`` (the table of the Slack scopes the product needs). Never ``bridge.app``.
"""
