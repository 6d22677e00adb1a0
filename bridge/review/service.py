"""The review service, on the runner's event loop: takes requests, runs reviews, finishes and
cleans them.

One review: the PR head is fetched into its own worktree; a header message ("Reviewing #42 ...")
is posted in the template's channel and the reviewer is pinned to its thread (everything it
says goes there); a one-shot copy of the template is spawned in the worktree with the filled-in
task; when that task's turn ends the runner stops it (ephemeral agents always are) and the
header is edited to done, with the link of the review the agent posted on the PR if ``gh``
shows one. After ``keep_for`` the spawned file and the worktree are removed.

Every trigger goes through :meth:`ReviewService.begin`, which refuses a second review of a PR
under review and a head already reviewed (see :mod:`bridge.review.ledger`). Blocking work (git,
gh, SQLite, writing the spawned file) runs in worker threads; the loop only awaits it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from bridge.aio import TaskSet, wait_event
from bridge.chat.protocol import ChatBackend, Outgoing
from bridge.config import access
from bridge.config.model import AgentConfig, Config, ConfigError, channel_for
from bridge.config.spawned import spawn
from bridge.errors import AgentbridgeError
from bridge.mirror.routing import TurnRouter
from bridge.review import git
from bridge.review import pr as gh
from bridge.review.clean import clean_due
from bridge.review.ledger import Review, Reviews
from bridge.review.pr import PullRequest
from bridge.store.db import Store
from bridge.store.retry import in_thread_retrying, retrying

log = logging.getLogger("agentbridge.review")

USAGE = "Usage: `/agent review <PR number or URL> [TEMPLATE]`"
TICK = 1.0


def reviewer_slug(template: str, number: int, sha: str) -> str:
    """One agent per (template, PR, head): ``reviewer-42-1a2b3c4``, at most 60 characters."""
    return f"{template[:44].rstrip('-')}-{number}-{sha[:7]}"


def header_text(pr: PullRequest, state: str = "", link: str | None = None) -> str:
    what = f"#{pr.number} {pr.title} {pr.url}, head `{pr.head_sha[:12]}`"
    if state == "done":
        return f":white_check_mark: Reviewed {what}" + (f"\nReview: {link}" if link else "")
    if state:
        return f":warning: Review of {what} failed: {state}"
    return f":mag: Reviewing {what}"


class ReviewService:
    def __init__(
        self,
        config: Config,
        config_path: Path,
        state_dir: Path,
        store: Store,
        backend: ChatBackend,
        router: TurnRouter,
        agent_state: Callable[[str], str | None],
        fleet: Config | None = None,
    ) -> None:
        self.config = config
        """This host's agents: the templates this runner polls for and runs reviews of."""
        self.fleet = fleet or config
        """Every host's agents (the same as ``config`` on a single box): a request names or
        means a template among all of them, so every host picks the same one, and the one
        that owns it runs it (``owner``, for the router)."""
        self.config_path = config_path
        self.state_dir = state_dir
        self.store = store
        self.backend = backend
        self.router = router
        self.agent_state = agent_state
        """The store's state of an agent (``done`` once its task turn ended and it stopped)."""
        self.ledger: Reviews | None = None
        self.wake = asyncio.Event()
        self._tasks = TaskSet()
        self._taking: set[int] = set()
        self._next_poll: dict[str, float] = {}
        self._resolved: set[str] = set()

    def update_config(self, config: Config, fleet: Config | None = None) -> None:
        self.config = config
        self.fleet = fleet or config

    def templates(self) -> list[AgentConfig]:
        """This host's templates."""
        return [a for a in self.config.agents if a.review is not None]

    def _elsewhere(self, template: AgentConfig) -> bool:
        """A template another host runs (the router sends its requests there)."""
        return all(t.slug != template.slug for t in self.templates())

    async def _ledger(self) -> Reviews:
        if self.ledger is None:
            self.ledger = await asyncio.to_thread(Reviews, self.store)
        return self.ledger

    # -- triggers -------------------------------------------------------------------------

    def template(self, name: str | None, channel: str | None = None) -> AgentConfig | str:
        """The template a request means (among every host's), or why none can be chosen."""
        templates = [a for a in self.fleet.agents if a.review is not None]
        if name:
            found = next((t for t in templates if t.slug == name), None)
            known = ", ".join(f"`{t.slug}`" for t in templates) or "none"
            return found or f"No reviewer template `{name}` (templates: {known})."
        if len(templates) == 1:
            return templates[0]
        ids = dict(self.backend.channels)
        here = [t for t in templates if channel in (channel_for(t), ids.get(channel_for(t)))]
        if len(here) == 1:
            return here[0]
        if not templates:
            return "No reviewer template: add `review:` to an agent in agents.yaml."
        names = ", ".join(f"`{t.slug}`" for t in templates)
        return f"Several reviewer templates ({names}): name one, `/agent review 42 TEMPLATE`."

    def owner(self, channel: str, text: str) -> AgentConfig | None:
        """The template a ``/agent review`` (``text``: what follows the verb) is for, so that
        with several hosts the template's own host runs it (its repo, gh login and spawned
        reviewers are there); None when the request names none (answered where it lands)."""
        words = text.split()
        if not words or len(words) > 2:
            return None
        found = self.template(words[1] if len(words) > 1 else None, channel)
        return None if isinstance(found, str) else found

    async def command(self, user: str, channel: str, text: str) -> str:
        """``/agent review <PR> [TEMPLATE]``, for people who may steer the template."""
        words = text.split()
        if not words or len(words) > 2:
            return USAGE
        template = self.template(words[1] if len(words) > 1 else None, channel)
        if isinstance(template, str):
            return template
        if self._elsewhere(template):  # only without routing (it sends these to that host)
            return f"`{template.slug}` runs on host `{template.host}`; ask there."
        own = channel_for(template)
        where = access.place(channel, (own, self.backend.channels.get(own) or own))
        decision = access.authorize(self.config, template, user, access.Act.REVIEW, where)
        if not decision:
            log.warning(
                "%s: refused /agent review from %s in %s (%s)",
                template.slug,
                user,
                channel or "?",
                decision.reason,
            )
            return decision.refusal("no review was started")
        return await self.request(words[0], template, via="slack", user=user)

    async def request(
        self,
        ref: str,
        template: AgentConfig,
        *,
        via: str,
        user: str | None = None,
        request_id: int | None = None,
    ) -> str:
        """Look the PR up with ``gh`` and start its review, or say why not."""
        assert template.review is not None
        try:
            number, github = gh.parse_ref(ref)
            pull = await asyncio.to_thread(gh.view, template.review, number, github)
        except AgentbridgeError as err:
            return await self._refused(request_id, str(err))
        return await self.begin(template, pull, via=via, user=user, ref=ref, request_id=request_id)

    async def _refused(self, request_id: int | None, why: str) -> str:
        if request_id is not None:
            ledger = await self._ledger()
            await asyncio.to_thread(ledger.update, request_id, status="refused", note=why)
        return why

    async def begin(
        self,
        template: AgentConfig,
        pull: PullRequest,
        *,
        via: str,
        user: str | None = None,
        ref: str | None = None,
        request_id: int | None = None,
    ) -> str:
        """Start a review of ``pull``'s head unless it is under review or was reviewed."""
        assert template.review is not None
        ledger = await self._ledger()
        slug = reviewer_slug(template.slug, pull.number, pull.head_sha)
        fields = {
            "template": template.slug,
            "ref": ref or str(pull.number),
            "repo": str(template.review.repo),
            "number": pull.number,
            "head": pull.head_sha,
            "title": pull.title,
            "url": pull.url,
            "slug": slug,
            "via": via,
            "user": user,
            "channel": channel_for(template),
        }
        review_id, other = await asyncio.to_thread(ledger.begin, fields, request_id)
        if review_id is None:
            return await self._refused(request_id, self._busy(pull, other))
        log.info("%s: reviewing #%d at %s (%s)", slug, pull.number, pull.head_sha[:12], via)
        self._tasks.spawn(self._run(review_id, template, pull, slug))
        return (
            f"Starting a review of #{pull.number} {pull.title} (head `{pull.head_sha[:7]}`) "
            f"in {channel_for(template)}, as `{slug}`."
        )

    @staticmethod
    def _busy(pull: PullRequest, other: Review | None) -> str:
        if other is not None and other.status == "running":
            head = (other.head or "")[:7]
            return (
                f"#{pull.number} is already under review (head `{head}`, as `{other.slug}`); "
                "not starting another."
            )
        when = f" ({other.status})" if other is not None else ""
        return f"#{pull.number} was already reviewed at head `{pull.head_sha[:7]}`{when}."

    # -- the run ----------------------------------------------------------------------------

    async def _post_header(self, review_id: int, channel: str, slug: str, text: str) -> str:
        if channel not in self._resolved:
            self._resolved.add(channel)
            for problem in await self.backend.resolve_channels([channel]):
                log.error("%s", problem)
        posted = await self.backend.post(Outgoing(slug, channel, text, f"review:{review_id}"))
        return posted.ref

    async def _run(
        self, review_id: int, template: AgentConfig, pull: PullRequest, slug: str
    ) -> None:
        review = template.review
        assert review is not None and self.ledger is not None
        channel = channel_for(template)
        worktree = review.worktrees / slug
        header: str | None = None
        try:
            fetched = await asyncio.to_thread(
                git.fetch_head, review.repo, review.remote, pull.number
            )
            if fetched != pull.head_sha and not await asyncio.to_thread(
                git.has_commit, review.repo, pull.head_sha
            ):
                log.warning("%s: gh said head %s, fetched %s", slug, pull.head_sha, fetched)
                pull = PullRequest(pull.number, pull.title, pull.url, fetched, pull.base, pull.head)
            base_sha = await asyncio.to_thread(
                git.merge_base, review.repo, review.remote, pull.base, pull.head_sha
            )
            await asyncio.to_thread(git.add_worktree, review.repo, worktree, pull.head_sha)
            header = await self._post_header(review_id, channel, slug, header_text(pull))
            self.router.pin(slug, header)
            await asyncio.to_thread(
                self.ledger.update, review_id, header=header, worktree=str(worktree)
            )
            task = gh.fill(review.task, pull, review.repo, base_sha)
            await asyncio.to_thread(
                spawn,
                self.config_path,
                self.state_dir,
                template.slug,
                slug,
                [f"workdir={worktree}"],
                task,
            )
        except (AgentbridgeError, OSError) as err:
            reason = "; ".join(err.errors) if isinstance(err, ConfigError) else str(err)
            log.error("%s: review of #%d could not start: %s", slug, pull.number, reason)
            await asyncio.to_thread(self.ledger.update, review_id, worktree=str(worktree))
            await asyncio.to_thread(self.ledger.finish, review_id, "failed", 0.0, reason)
            await self._say(channel, header, slug, review_id, header_text(pull, reason))
            self.wake.set()  # cleanup of the worktree now (keep_for 0 for a failed start)

    async def _say(
        self, channel: str, header: str | None, slug: str, review_id: int, text: str
    ) -> None:
        try:
            if header is None:
                await self._post_header(review_id, channel, slug, text)
            else:
                await self.backend.update(channel, header, text)
        except Exception as err:  # the review's outcome is in the db either way
            log.warning("%s: could not update the review header: %s", slug, err)

    def finished(self, slug: str) -> None:
        """The lifecycle says ``slug``'s task turn ended (call on the loop)."""
        self._tasks.spawn(self._finish(slug))

    async def _finish(self, slug: str) -> None:
        ledger = await self._ledger()
        review = await asyncio.to_thread(ledger.by_slug, slug)
        template = self.config.agent(review.template or "") if review else None
        if review is None or template is None or template.review is None:
            return
        pull = PullRequest(
            review.number or 0, review.title or "", review.url or "", review.head or "", "", ""
        )
        link: str | None = None
        try:
            link = await asyncio.to_thread(gh.review_link, template.review, pull, review.created_at)
        except AgentbridgeError as err:
            log.info("%s: no review link (%s)", slug, err)
        if not await asyncio.to_thread(
            ledger.finish, review.id, "done", template.review.keep_for, link
        ):
            return
        log.info("%s: review of #%s done%s", slug, review.number, f": {link}" if link else "")
        channel = review.channel or channel_for(template)
        await self._say(channel, review.header, slug, review.id, header_text(pull, "done", link))

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        ledger = await retrying(self._ledger, "opening the review ledger", stop)
        for review in await in_thread_retrying(ledger.running, "listing running reviews", stop):
            if review.slug and review.header:
                self.router.pin(review.slug, review.header)  # threads survive a restart
        while not stop.is_set():
            try:
                await self._pass(ledger)
            except Exception:  # one bad pass must not end reviews for good
                log.exception("review: pass failed")
            self.wake.clear()
            await wait_event(self.wake, TICK)

    async def _pass(self, ledger: Reviews) -> None:
        for request in await asyncio.to_thread(ledger.requested):
            chosen = self.template(request.template)
            if not isinstance(chosen, str) and self._elsewhere(chosen):
                continue  # its template's host takes it (a shared store's ledger is shared)
            if request.id not in self._taking:
                self._taking.add(request.id)
                self._tasks.spawn(self._take(request))
        for review in await asyncio.to_thread(ledger.running):
            if review.slug and await asyncio.to_thread(self.agent_state, review.slug) == "done":
                await self._finish(review.slug)  # its stop was missed (a runner restart)
        now = time.time()
        for template in self.templates():
            assert template.review is not None
            if template.review.poll and now >= self._next_poll.get(template.slug, 0.0):
                self._next_poll[template.slug] = now + template.review.poll
                self._tasks.spawn(self._poll(template))
        for review in await asyncio.to_thread(clean_due, ledger, self.state_dir):
            if review.slug:
                self.router.pin(review.slug, None)

    async def _take(self, request: Review) -> None:
        """A review asked for with ``agentbridge review``."""
        try:
            template = self.template(request.template)
            if isinstance(template, str):
                await self._refused(request.id, template)
            else:
                await self.request(request.ref, template, via="cli", request_id=request.id)
        finally:
            self._taking.discard(request.id)

    async def _poll(self, template: AgentConfig) -> None:
        assert template.review is not None and self.ledger is not None
        try:
            pulls = await asyncio.to_thread(gh.listed, template.review)
        except AgentbridgeError as err:
            log.warning("%s: review poll failed: %s", template.slug, err)
            return
        for pull in pulls:
            if not template.review.rereview:
                done = await asyncio.to_thread(
                    self.ledger.reviewed, str(template.review.repo), pull.number
                )
                if done:
                    continue
            outcome = await self.begin(template, pull, via="poll")
            log.debug("%s: poll: %s", template.slug, outcome)
