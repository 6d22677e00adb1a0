"""Chat backends behind one small protocol (post, update, react, upload, receive): the console
backend (the embedded default), the Slack backend on slack-bolt Socket Mode (``slack/``), and the
factory that picks one from the environment.

May import: ``bridge.config``, ``bridge.render``, ``bridge.errors``. Knows nothing of agents' tmux
panes, the queue or the lifecycle.
"""
