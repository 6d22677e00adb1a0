"""Answering agents from chat: their questions and approval requests as buttons.

An agent's question (Claude's ``AskUserQuestion``) or approval request (a ``PermissionRequest``
under ``permissions: ask``) reaches the runner through the one hook that may block
(``agentbridge hook wait:EVENT``); this package posts it as a Block Kit message, takes the
click of a person allowed to steer the agent, stores and audits the answer, and hands it back
to the waiting hook. See docs/questions.md.

May import: ``bridge.config``, ``bridge.store``, ``bridge.chat``, ``bridge.hooks``,
``bridge.lifecycle``, ``bridge.channel`` (who may steer), ``bridge.render`` (redaction before a
cut), ``bridge.errors``, ``bridge.aio``.
"""
