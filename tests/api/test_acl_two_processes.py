"""Issue 18's "rights granted and revoked take effect at once in sessions of another
process", with two ``duck serve`` processes on one database: alice shares her INBOX
through process A (IMAP SETACL, then the HTTP API) and takes it back (the API, then
IMAP DELETEACL); bob's IMAP sessions on process B see each change within a bounded
wait, both in new commands (LIST, SELECT) and in a session that has the mailbox
selected (idling, or issuing commands).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from .multiproc import DuckProcess, LineClient, duck_process

pytestmark = pytest.mark.slow
ALICE = "alice@example.com"
BOB = "bob@example.com"
PASSWORD = "shared-secret"
SHARED = f'"Other Users/{ALICE}/INBOX"'
#: How long a change made through A may take to show in B: the reader learns of it
#: from the database (its change stream), in milliseconds when nothing is wrong.
BOUND = 5.0


async def _session(port: int, user: str) -> LineClient:
    c = await LineClient.connect(port)
    assert (await c.line()).startswith(b"* OK")
    await c.command("l", f'LOGIN "{user}" "{PASSWORD}"')
    return c


async def _tagged(c: LineClient, tag: str, text: str) -> list[bytes]:
    """The answer to one command, whatever its status."""
    await c.send(f"{tag} {text}\r\n".encode())
    return await c.until(tag.encode() + b" ")


async def _until(c: LineClient, tag: str, text: str, status: tuple[bytes, ...]
                 ) -> list[bytes]:
    """Repeat a command until its tagged status is one of ``status`` (fails past
    BOUND); its answer."""
    with trio.fail_after(BOUND):
        while True:
            lines = await _tagged(c, tag, text)
            if lines[-1].split(b" ")[1] in status:
                return lines
            await trio.sleep(0.02)


def _listed(lines: list[bytes]) -> list[bytes]:
    return [x for x in lines if x.startswith(b"* LIST") and b"Other Users/" in x]


async def test_rights_take_effect_at_once_in_another_process(
        mongo_uri: str, db_name: str, tmp_path: Path) -> None:
    procs: dict[str, DuckProcess] = {}
    both, done = trio.Event(), trio.Event()

    async def run(name: str) -> None:
        # Both start at once: a process takes seconds to come up.
        async with duck_process(mongo_uri, db_name, tmp_path / name) as proc:
            procs[name] = proc
            if len(procs) == 2:
                both.set()
            await done.wait()

    with trio.fail_after(150):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run, "a")
            nursery.start_soon(run, "b")
            await both.wait()
            try:
                await _scenario(procs["a"], procs["b"])
            finally:
                done.set()


async def _scenario(a: DuckProcess, b: DuckProcess) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{a.ports['api']}",
                                 timeout=20) as api:
        ids = {}
        for name in (ALICE, BOB):
            r = await api.post("/users", json={"username": name, "password": PASSWORD})
            assert r.status_code == 200, r.text
            ids[name] = r.json()["id"]
        r = await api.get(f"/users/{ids[ALICE]}/mailboxes")
        inbox = next(m["id"] for m in r.json()["results"] if m["path"] == "INBOX")
        acl = f"/users/{ids[ALICE]}/mailboxes/{inbox}/acl/{BOB}"

        owner = await _session(a.ports["imap"], ALICE)
        msg = b"From: alice@example.com\r\nSubject: for bob\r\n\r\nhello\r\n"
        await owner.send(b"ap APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        assert (await owner.until(b"ap "))[-1].startswith(b"ap OK")
        reader = await _session(b.ports["imap"], BOB)
        # Not shared: nothing listed, and SELECT says it does not exist.
        assert _listed(await reader.command("l0", 'LIST "" "Other Users/*"')) == []
        lines = await _tagged(reader, "s0", f"SELECT {SHARED}")
        assert lines[-1].startswith(b"s0 NO [NONEXISTENT]"), lines

        # 1. Granted through A's IMAP: B's next LIST and SELECT have it.
        await owner.command("g1", f"SETACL INBOX {BOB} lr")
        lines = await _poll_listed(reader)
        assert _listed(lines) == [
            f'* LIST (\\Noselect \\HasChildren) "/" "Other Users/{ALICE}"'.encode(),
            b'* LIST (\\HasNoChildren) "/" ' + SHARED.encode()], lines
        lines = await _until(reader, "s1", f"SELECT {SHARED}", (b"OK",))
        assert lines[-1].startswith(b"s1 OK [READ-ONLY]") and b"* 1 EXISTS" in lines, lines

        # 2. Revoked through A's API while bob idles in it on B: he is told at once
        # that the mailbox is closed, and it is gone for his next commands.
        await reader.send(b"i IDLE\r\n")
        assert (await reader.line()).startswith(b"+")
        r = await api.delete(acl)
        assert r.status_code == 200, r.text
        with trio.fail_after(BOUND):
            line = await reader.line()
            while not line.startswith(b"* OK [CLOSED]"):
                line = await reader.line()
        await reader.send(b"DONE\r\n")
        assert (await reader.until(b"i "))[-1].startswith(b"i OK")
        lines = await _tagged(reader, "s2", f"SELECT {SHARED}")
        assert lines[-1].startswith(b"s2 NO [NONEXISTENT]"), lines
        assert _listed(await reader.command("l2", 'LIST "" "Other Users/*"')) == []

        # 3. Granted through A's API with s and w: read-write for bob on B.
        r = await api.put(acl, json={"rights": "lrsw"})
        assert r.status_code == 200, r.text
        lines = await _until(reader, "s3", f"SELECT {SHARED}", (b"OK",))
        assert lines[-1].startswith(b"s3 OK [READ-WRITE]"), lines
        await reader.command("t3", "STORE 1 +FLAGS.SILENT (\\Flagged)")

        # 4. Revoked through A's IMAP while selected on B: the next commands fail
        # (NO while the session finds it out, BAD once it has left the mailbox).
        await owner.command("d4", f"DELETEACL INBOX {BOB}")
        lines = await _until(reader, "f4", "FETCH 1 FLAGS", (b"NO", b"BAD"))
        assert not any(x.startswith(b"* 1 FETCH") for x in lines), lines
        lines = await _tagged(reader, "s4", f"SELECT {SHARED}")
        assert lines[-1].startswith(b"s4 NO [NONEXISTENT]"), lines
        # What bob did while he had w stays: alice sees his flag.
        await owner.command("s5", "SELECT INBOX")
        assert b"\\Flagged" in (await owner.command("f5", "FETCH 1 FLAGS"))[0]
        for c in (owner, reader):
            await c.stream.aclose()


async def _poll_listed(reader: LineClient) -> list[bytes]:
    """LIST until it shows a mailbox of another user (fails past BOUND)."""
    with trio.fail_after(BOUND):
        while True:
            lines = await reader.command("l1", 'LIST "" "Other Users/*"')
            if _listed(lines):
                return lines
            await trio.sleep(0.02)
