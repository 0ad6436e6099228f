"""POP3 reports its connections and commands to the server's observer (GET /metrics
of a whole server is tested in tests/test_metrics.py; POP3 is off in test servers)."""

from __future__ import annotations

import poplib

import trio

from duck import observe
from duck.pop3.server import Pop3Config, Pop3Context, serve_pop3
from duck.pop3.store_backend import StoreBackend, StoreSettings
from duck.store import Store


async def test_pop3_connections_and_commands_are_counted(store: Store,
                                                         nursery: trio.Nursery) -> None:
    await store.users.create("pia@example.com", "pw-pop3")
    observer = observe.Observer()
    context = Pop3Context(backend=StoreBackend(store, StoreSettings()),
                          config=Pop3Config(), shutdown=trio.Event())
    with observe.using(observer):
        port = await nursery.start(serve_pop3, context, "127.0.0.1", 0)

    def session() -> None:
        client = poplib.POP3("127.0.0.1", port, timeout=20)
        client.user("pia@example.com")
        client.pass_("pw-pop3")
        client.stat()
        client.quit()

    with trio.fail_after(30):
        await trio.to_thread.run_sync(session)
        # The close is reported once the server's handler has ended.
        while observer.registry.get_sample_value(
                "duck_connections_open", {"protocol": "pop3"}) != 0:
            await trio.sleep(0.05)
    sample = observer.registry.get_sample_value
    assert sample("duck_connections_total", {"protocol": "pop3"}) == 1
    for verb in ("USER", "PASS", "STAT", "QUIT"):
        assert sample("duck_command_seconds_count", {"protocol": "pop3", "command": verb}) == 1
    context.shutdown.set()
