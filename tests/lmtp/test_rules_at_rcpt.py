"""A delivery's Sieve scripts and mail rules come with the RCPT query
(duck/lmtp/store_backend.py): DATA reads nothing more for them, and what it uses
is what ``for_delivery`` would have read."""

from __future__ import annotations

import pytest
import trio

from duck.lmtp import store_backend
from duck.lmtp.address import NormalizedAddress
from duck.lmtp.backend import Accepted, AcceptedRecipient, Envelope
from duck.lmtp.store_backend import StoreBackend
from duck.store import Autoreply, Store, metrics

SCRIPT = 'require "fileinto"; fileinto "Lists";\n'


def _envelope(*recipients: tuple[str, str]) -> Envelope:
    return Envelope("sender@example.org", tuple(
        AcceptedRecipient(address, address, None, user, b"") for address, user in recipients),
        None, None, False)


async def test_rules_read_at_rcpt_serve_the_delivery(store: Store) -> None:
    alice = await store.users.create("alice@example.com", "pw")
    bob = await store.users.create("bob@example.com", "pw")
    carol = await store.users.create("carol@example.com", "pw")
    await store.sieve.put(alice.id, "main", SCRIPT)
    await store.sieve.activate(alice.id, "main")
    await store.sieve.put(bob.id, "idle", SCRIPT)  # not active: no script for bob
    await store.sieve.set_autoreply(carol.id, Autoreply(True, "away"))
    expected = await store.sieve.for_delivery([alice.id, bob.id, carol.id])
    assert set(expected) == {alice.id, carol.id}

    backend = StoreBackend(store)
    with trio.fail_after(30):
        checks = [await backend.check_recipient(NormalizedAddress(a, None))
                  for a in ("alice@example.com", "bob@example.com", "carol@example.com")]
        assert checks == [Accepted(user=u.id) for u in (alice, bob, carol)]
        metrics.reset()
        delivery = await backend.open_delivery(_envelope(
            ("alice@example.com", alice.id), ("bob@example.com", bob.id),
            ("carol@example.com", carol.id)))
        assert metrics.statistics().get(metrics.OTHER, {}).get("round_trips", 0) == 0
        loaded = delivery._scripts  # what the delivery will run
        assert set(loaded) == {alice.id, carol.id}
        assert loaded[alice.id].script == expected[alice.id][0]
        assert loaded[alice.id].compiled is not None
        assert loaded[carol.id].rules == expected[carol.id][1]
        assert loaded[carol.id].script is None
        await delivery.abort()

        # Without the RCPT's reading (another backend), DATA reads them itself.
        metrics.reset()
        other = await StoreBackend(store).open_delivery(_envelope(
            ("alice@example.com", alice.id), ("carol@example.com", carol.id)))
        assert metrics.statistics()[metrics.OTHER]["round_trips"] >= 1
        assert set(other._scripts) == {alice.id, carol.id}
        await other.abort()


async def test_rules_kept_between_rcpt_and_data_are_bounded(store: Store) -> None:
    """What RCPT reads for DATA is capped in entries and in script octets: the
    oldest entries go first, and a recipient whose entry went reads at DATA."""
    users = [await store.users.create(f"u{i}@example.com", "pw") for i in range(4)]
    source = 'require "fileinto";\n' + "# padding\n" * 2000  # ~20 KB
    for user in users:
        await store.sieve.put(user.id, "big", source)
        await store.sieve.activate(user.id, "big")
    backend = StoreBackend(store)
    with trio.fail_after(30), pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_backend, "KNOWN_BYTES", 3 * len(source))
        for i in range(4):
            await backend.check_recipient(NormalizedAddress(f"u{i}@example.com", None))
        kept = backend.statistics()
        assert kept == {"known": 3, "known_bytes": 3 * len(source)}, kept
        # u0's entry was the oldest: its delivery reads the rules itself.
        metrics.reset()
        delivery = await backend.open_delivery(_envelope(("u0@example.com", users[0].id)))
        assert metrics.statistics()[metrics.OTHER]["round_trips"] >= 1
        assert delivery._scripts[users[0].id].script is not None
        await delivery.abort()
        metrics.reset()
        delivery = await backend.open_delivery(_envelope(("u3@example.com", users[3].id)))
        assert metrics.statistics().get(metrics.OTHER, {}).get("round_trips", 0) == 0
        await delivery.abort()
        assert backend.statistics() == {"known": 2, "known_bytes": 2 * len(source)}
