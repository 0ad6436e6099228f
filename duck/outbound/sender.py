"""The outbound sender: claims due messages from the store's queue and relays them.

One task per ``duck serve`` process when ``smtp_relay`` is set. Several
processes (or hosts) cooperate through the queue's claims (``store.outbound``):
each message is claimed by one sender at a time, for longer than one attempt can
take, so it is sent once. The task wakes when its own process enqueues a
message, and otherwise sleeps until the next retry falls due, or at most
``poll_interval`` (which is how it sees messages other processes queued, and
claims abandoned by a process that died).

An attempt: claim, send through the relay (``smtp.send`` in a worker thread),
record the outcome (``settle``) at once, then QUIT. Recipients the relay
deferred, or all of them when it could not be reached, are retried after an
exponential backoff, until ``max_age`` after the message was queued; then they
are given up and the message is marked failed (no bounce is generated: see
docs/outbound.md). The record of a message the relay accepted is retried
through database outages while the claim lasts, since not recording it means
sending it again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from typing import Any

import attrs
import trio

from ..store import OutboundMessage, Outcome, Store, StoreUnavailable, backoff
from . import smtp

log = logging.getLogger(__name__)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@attrs.define
class Sender:
    """Sends the outbound queue through one relay until cancelled."""

    store: Store
    relay: smtp.RelaySettings
    #: Seconds after queueing when undelivered recipients are given up
    #: (RFC 5321 §4.5.4.1: "at least 4-5 days").
    max_age: float = 5 * 24 * 3600.0
    #: Retry delays: ``retry_base * 2**(attempt-1)`` seconds, capped at ``retry_cap``.
    retry_base: float = 60.0
    retry_cap: float = 3600.0
    #: Longest sleep between looks at the queue.
    poll_interval: float = 10.0
    #: Messages in flight at once in this process.
    concurrency: int = 4
    owner: str = attrs.Factory(lambda: f"{socket.gethostname()}:{os.getpid()}")
    sent: int = 0
    deferred: int = 0
    refused: int = 0
    failed: int = 0
    #: Attempts whose outcome could not be recorded before the claim ran out (the
    #: message will be sent again: counted so that it shows).
    unrecorded: int = 0
    _wake: trio.Event = attrs.Factory(trio.Event)

    @property
    def lease(self) -> float:
        """Seconds a claim lasts: one whole attempt and time to record it."""
        return self.relay.longest_attempt() + 60.0

    def statistics(self) -> dict[str, Any]:
        """What this process's sender did: messages sent, recipients deferred and
        refused, messages failed, outcomes not recorded."""
        return {"sent": self.sent, "deferred": self.deferred, "refused": self.refused,
                "failed": self.failed, "unrecorded": self.unrecorded, "owner": self.owner}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Claim and send until cancelled; database outages are waited out."""
        slots = trio.CapacityLimiter(self.concurrency)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._forward_enqueues)
            task_status.started()
            while True:
                self._wake = trio.Event()  # a wake-up from here on is not lost
                sleep = self.poll_interval
                try:
                    while slots.available_tokens > 0:
                        message = await self.store.outbound.claim(self.owner, self.lease)
                        if message is None:
                            break
                        await slots.acquire_on_behalf_of(message.id)
                        nursery.start_soon(self._attempt, slots, message)
                    if slots.available_tokens > 0:
                        due = await self.store.outbound.next_due()
                        if due is not None:
                            wait = (due - _now()).total_seconds()
                            sleep = min(self.poll_interval, max(0.01, wait))
                except StoreUnavailable as exc:
                    log.warning("outbound: %s", exc)
                except Exception:
                    log.exception("outbound: sender step failed")
                with trio.move_on_after(sleep):
                    await self._wake.wait()

    async def _forward_enqueues(self) -> None:
        seen = self.store.outbound.enqueued
        while True:
            await self.store.outbound.wait_enqueued(seen)
            seen = self.store.outbound.enqueued
            self._wake.set()

    async def _attempt(self, slots: trio.CapacityLimiter, message: OutboundMessage) -> None:
        try:
            try:
                # Not cancellable: smtplib's timeouts bound it (RelaySettings).
                attempt = await trio.to_thread.run_sync(
                    smtp.send, self.relay, message.sender, list(message.recipients),
                    message.message)
            except Exception as exc:
                # A bug, not the relay: still a deferral, so that the message is
                # retried with backoff and given up at max_age, not claimed anew
                # every lease forever.
                log.exception("outbound: sending %s failed", message.id)
                attempt = smtp.Attempt(deferred=message.recipients,
                                       error=f"{type(exc).__name__}: {exc}"[:500])
            delay = backoff(message.attempts, self.retry_base, self.retry_cap)
            outcome = Outcome(sent=attempt.sent, refused=attempt.refused,
                              deferred=attempt.deferred, error=attempt.error, delay=delay)
            # Shielded: at shutdown, what the relay took is still recorded.
            with trio.CancelScope(shield=True):
                status = await self._settle(message, outcome)
                await trio.to_thread.run_sync(attempt.close)
            self._count(message, outcome, status)
        except Exception:
            log.exception("outbound: attempt on %s failed", message.id)
        finally:
            slots.release_on_behalf_of(message.id)
            self._wake.set()

    async def _settle(self, message: OutboundMessage, outcome: Outcome) -> str | None:
        pause = 0.5
        while True:
            try:
                return await self.store.outbound.settle(message, outcome,
                                                        max_age=self.max_age)
            except StoreUnavailable as exc:
                left = (message.lease_until - _now()).total_seconds()
                if left < pause + 5:
                    self.unrecorded += 1
                    log.error("outbound: %s: outcome not recorded (%s); it will be "
                              "attempted again", message.id, exc)
                    return None
                log.warning("outbound: %s: recording the outcome: %s; retrying",
                            message.id, exc)
                await trio.sleep(pause)
                pause = min(pause * 2, 10.0)

    def _count(self, message: OutboundMessage, outcome: Outcome, status: str | None) -> None:
        self.deferred += len(outcome.deferred)
        self.refused += len(outcome.refused)
        if outcome.sent:
            self.sent += 1
        if status == "failed":
            self.failed += 1
        if status is None:
            log.warning("outbound: %s: claim lost before the outcome was recorded",
                        message.id)
        elif outcome.deferred or outcome.refused:
            log.info("outbound: %s (%s) to %d recipient(s): %s; now %s", message.id,
                     message.kind, len(message.recipients), outcome.error, status)
        else:
            log.info("outbound: %s (%s) sent", message.id, message.kind)
