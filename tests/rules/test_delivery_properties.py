"""Issue 14's property: random scripts and messages through the real delivery path
(the recipient's active script, the store, the outbound queue): delivery never
fails and never loses the message unless the script said to."""

from __future__ import annotations

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duck.rules.delivery import Loaded, Recipient, Rules
from duck.store import Delivered, Store, User
from tests.sieve.test_properties import REQUIRE, commands

header_values = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=30)
fields = st.lists(st.tuples(st.sampled_from(["From", "To", "Subject", "List-Id", "Date",
                                             "Message-ID", "X-Spam"]), header_values),
                  max_size=5)


def test_delivery_never_fails_and_never_loses_mail(mongo_uri: str, db_name: str) -> None:
    store = trio.run(Store.open, mongo_uri, db_name)
    try:
        user = trio.run(store.users.create, "prop@example.com", "pw")
        rules = Rules(store)

        @settings(suppress_health_check=[HealthCheck.too_slow], deadline=None,
                  max_examples=25)
        @given(body=st.lists(commands(), max_size=5), head=fields,
               text=st.text(max_size=100))
        def run(body: list[str], head: list[tuple[str, str]], text: str) -> None:
            source = REQUIRE + "\n".join(body)
            message = ("".join(f"{n}: {v}\r\n" for n, v in head) + "\r\n" + text).encode(
                "utf-8", "surrogatepass")
            trio.run(_check, store, rules, user, source, message)

        run()
    finally:
        trio.run(store.database.run_threaded, store.database.client.drop_database, db_name)
        trio.run(store.aclose)


async def _check(store: Store, rules: Rules, user: User, source: str, message: bytes) -> None:
    script = await store.sieve.put(user.id, "random", source)
    await store.sieve.activate(user.id, "random")
    loaded = (await rules.load([user.id]))[user.id]
    assert isinstance(loaded, Loaded) and loaded.compiled is not None
    ingest = store.messages.ingest()
    await ingest.write(message)
    ingested = await ingest.finish()
    plan = await rules.plan(
        Recipient(user.id, "prop+x@example.com", "prop@example.com", b"Delivered-To: x\r\n"),
        loaded, message, complete=True, reverse_path="sender@example.org",
        size=len(message))
    results = await store.messages.deliver(ingested, list(plan.targets))
    # Every copy the script asked for is stored.
    assert all(isinstance(r, Delivered) for r in results), results
    if not plan.targets:
        # Nothing stored only when the script said so (reject, discard, redirect).
        assert plan.refusal is not None or plan.note in ("discarded", "redirected")
        text = source.lower()
        assert any(word in text for word in ("reject", "discard", "redirect")), source
    assert script.name == "random"
