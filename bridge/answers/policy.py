"""When nobody answers: one reminder, then (if configured) a default answer or a refusal.

Times count from when the ask was first recorded (``created_at`` in the database), so a runner
restart neither resets nor repeats them: a reminder already sent is not sent again, and a
timeout that passed while the runner was down fires as soon as the hook reconnects.

On timeout a question gets ``default_answer`` (``on_timeout: default``) or is refused: the
hook denies the tool call with a reason the model reads ("nobody answered; go on with your
own judgement"). An approval nobody answered is always denied: failing closed. Either way the
message loses its buttons and the thread is told.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from bridge.answers.book import AskBook, AskRow
from bridge.config.asks import AnswerPolicy
from runtimes.asks import Answer, Ask


class PolicyHost(Protocol):
    """What the policy needs from the service (so it does not import it: no cycle)."""

    book: AskBook

    async def finish(
        self, row: AskRow, answer: Answer, user: str, said: str, then: str | None = None
    ) -> str | None: ...

    async def say(self, row: AskRow, text: str) -> None: ...


def timeout_answer(ask: Ask, policy: AnswerPolicy, minutes: float) -> tuple[Answer, str]:
    """The answer the policy gives, and how the message and the audit describe it."""
    waited = f"Nobody answered within {minutes:g} min"
    if ask.kind == "approval":
        return Answer("deny", message=f"{waited}; not run."), f"{waited}: denied."
    if policy.on_timeout == "default":
        answers = {
            q.text: (
                q.options[0].label
                if policy.default_answer == "first" and q.options
                else policy.default_answer
            )
            for q in ask.questions
        }
        said = "; ".join(f"{k} → {v}" for k, v in answers.items())
        return Answer("answers", answers), f"{waited}: answered with the default ({said})."
    message = (
        f"{waited}; the question was not answered. Go on with your own best judgement, "
        "and say which choice you made."
    )
    return Answer("refuse", message=message), f"{waited}: refused, the agent goes on."


async def _sleep_until(when: float) -> None:
    delay = when - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def run_policy(
    service: PolicyHost, row: AskRow, policy: AnswerPolicy, waiter: asyncio.Future[Answer]
) -> None:
    remind = policy.remind_after_minutes
    timeout = policy.timeout_minutes
    if remind is not None and row.reminded_at is None and (timeout is None or remind < timeout):
        await _sleep_until(row.created_at + remind * 60)
        if waiter.done():
            return
        await asyncio.to_thread(service.book.reminded, row.id)
        await service.say(
            row,
            f":bell: {row.slug} is still waiting for an answer to this "
            f"{'approval' if row.kind == 'approval' else 'question'}.",
        )
    if timeout is None:
        return
    await _sleep_until(row.created_at + timeout * 60)
    if waiter.done():
        return
    answer, said = timeout_answer(row.ask, policy, timeout)
    await service.finish(row, answer, "policy", said, then=f":hourglass: {said}")
