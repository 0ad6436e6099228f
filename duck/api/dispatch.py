"""The webhook dispatcher: queue production from the journal, then signed POSTs.

Runs as one task per process (several processes cooperate through the queue's
atomic claims, see ``duck.store.webhooks``). It never touches the delivery path:
LMTP and IMAP write the journal as they always do, and the dispatcher reads it
afterwards, so a hook that hangs or fails costs the dispatcher a slot for at most
``timeout`` seconds and nothing else.

A POST carries ``X-Duck-Signature: sha256=<hex HMAC-SHA256 of the body with the
hook's secret>``, ``X-Duck-Event`` (the type) and ``X-Duck-Event-Id`` (the dedup
key: delivery is at-least-once). A 2xx answer completes it; anything else, a
timeout or a refused connection is retried after an exponential backoff.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import socket
from typing import Any

import attrs
import httpx
import trio

from ..store import (
    ANY_KEY,
    MAX_ATTEMPTS,
    Delivery,
    Hook,
    Notifier,
    Store,
    StoreUnavailable,
    backoff,
)
from .convert import hook_body

log = logging.getLogger(__name__)


def sign(secret: str, body: bytes) -> str:
    """The ``X-Duck-Signature`` value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@attrs.define
class Dispatcher:
    """Produces and sends webhook deliveries until cancelled."""

    store: Store
    #: Seconds between productions without a notifier (or with one, while hooks
    #: exist, as a floor for retries that fall due).
    poll_interval: float = 0.5
    #: With a notifier: changes wake the producer (at most every ``min_gap``
    #: seconds); without hooks it only looks every ``idle_interval`` seconds.
    notifier: Notifier | None = None
    idle_interval: float = 5.0
    min_gap: float = 0.1
    timeout: float = 10.0
    concurrency: int = 8
    #: Retry delays: ``backoff_base * 2**(attempt-1)`` seconds, capped.
    backoff_base: float = 2.0
    backoff_cap: float = 3600.0
    max_attempts: int = MAX_ATTEMPTS
    owner: str = attrs.Factory(lambda: f"{socket.gethostname()}:{os.getpid()}")
    sent: int = 0
    failed: int = 0
    _wake: trio.Event = attrs.Factory(trio.Event)

    def statistics(self) -> dict[str, Any]:
        """Deliveries sent and failed attempts by this process."""
        return {"sent": self.sent, "failed_attempts": self.failed, "owner": self.owner}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Produce and dispatch forever; database outages are waited out."""
        limiter = trio.CapacityLimiter(self.concurrency)
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            task_status.started()
            async with trio.open_nursery() as nursery:
                if self.notifier is not None:
                    nursery.start_soon(self._forward_changes, self.notifier)
                while True:
                    try:
                        await self.store.webhooks.produce(hook_body)
                        while limiter.available_tokens > 0:
                            claimed = await self.store.webhooks.claim(
                                self.owner, lease=self.timeout * 3
                            )
                            if claimed is None:
                                break
                            await limiter.acquire_on_behalf_of(claimed[0].id)
                            nursery.start_soon(self._send, client, limiter, *claimed)
                    except StoreUnavailable as exc:
                        log.warning("webhooks: %s", exc)
                    except Exception:
                        log.exception("webhooks: dispatcher step failed")
                    idle = self.notifier is not None and not self.store.webhooks.has_hooks
                    with trio.move_on_after(self.idle_interval if idle else self.poll_interval):
                        await self._wake.wait()
                    self._wake = trio.Event()

    async def _forward_changes(self, notifier: Notifier) -> None:
        """Wake the producer on every change while there are hooks to tell (a poll
        every ``poll_interval`` alone delays each event by up to that much)."""
        webhooks = self.store.webhooks
        while True:
            # No hook, nothing to tell: no subscription either, only a look every
            # min_gap. Subscribed, this task woke for every change of every user
            # and went back to sleep (~500 times a second under imaptest's load).
            while not webhooks.has_hooks:
                await trio.sleep(self.min_gap)
            with notifier.subscription(ANY_KEY) as sub:
                # (What changed while there was no subscription: looked for now.)
                self._wake.set()
                while webhooks.has_hooks:
                    await sub.wait()
                    self._wake.set()
                    await trio.sleep(self.min_gap)

    async def _send(self, client: httpx.AsyncClient, limiter: trio.CapacityLimiter,
                    delivery: Delivery, hook: Hook) -> None:
        try:
            headers = {
                "content-type": "application/json",
                "user-agent": "duck-webhooks",
                "x-duck-event": delivery.kind,
                "x-duck-event-id": delivery.event_id,
                "x-duck-delivery": delivery.id,
                "x-duck-signature": sign(hook.secret, delivery.body),
            }
            error = None
            status = 0
            try:
                with trio.fail_after(self.timeout):
                    response = await client.post(hook.url, content=delivery.body,
                                                 headers=headers)
                status = response.status_code
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
            except (httpx.HTTPError, trio.TooSlowError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            try:
                if error is None:
                    self.sent += 1
                    await self.store.webhooks.complete(delivery, self.owner, status)
                else:
                    self.failed += 1
                    delay = backoff(delivery.attempts, self.backoff_base, self.backoff_cap)
                    log.info("webhook %s to %s failed (%s); retry in %.0f s",
                             delivery.event_id, hook.url, error, delay)
                    await self.store.webhooks.retry(delivery, self.owner, error, delay,
                                                    self.max_attempts)
            except StoreUnavailable:
                pass  # the lease expires and the delivery is claimed again
        finally:
            limiter.release_on_behalf_of(delivery.id)
            self._wake.set()  # a slot is free
