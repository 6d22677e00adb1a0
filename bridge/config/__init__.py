"""The fleet description: the validated config model, its error messages and value rules, the
state-dir paths, the config watcher (hot reload) and spawned (ephemeral) agent definitions.

May import: ``bridge.errors`` and ``runtimes`` (names only). Everything else imports it.
"""
