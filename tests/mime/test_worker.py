"""The parse worker (duck/mime/worker.py) answers exactly what the indexer gives in
place, over its framed socket protocol, and stops at its socket's end."""

from __future__ import annotations

import pickle
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from duck.mime import IndexerLimits, LargeBodyStart, MessageIndexer
from duck.mime.worker import MAX_REQUEST, frame, index_request

CORPUS = Path(__file__).parent / "corpus"


def in_place(data: bytes, limits: IndexerLimits) -> tuple[list[object], object]:
    indexer = MessageIndexer(limits)
    events = indexer.feed(data)
    closing, message = indexer.close()
    return events + closing, message


def by_worker(data: bytes, limits: IndexerLimits) -> tuple[bool, object, object]:
    ok, events, message, made = pickle.loads(index_request(pickle.dumps((data, limits, ()))))
    assert made == {}
    return ok, events, message


def subject_upper(message: Any) -> dict[str, bytes]:
    """An extra function for the worker to call: the subject, upper-cased."""
    return {"upper": message.envelope.subject.upper()}


def not_bytes(message: Any) -> dict[str, str]:
    return {"upper": "a str, not bytes"}


def test_a_worker_calls_the_extra_functions_named_and_reports_those_that_fail() -> None:
    data = (CORPUS / "digest.eml").read_bytes()
    here = __name__
    extras = (f"{here}:subject_upper", f"{here}:not_bytes", f"{here}:no_such_function",
              "no_such_module:render", f"{here}")
    ok, _, message, made = pickle.loads(index_request(pickle.dumps(
        (data, IndexerLimits(), extras))))
    assert ok and made == {f"{here}:subject_upper": subject_upper(message),
                           **{name: None for name in extras[1:]}}
    assert made[f"{here}:subject_upper"]["upper"] == message.envelope.subject.upper() != b""


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.eml")))
def test_a_worker_indexes_as_the_indexer_does(name: str) -> None:
    data = (CORPUS / name).read_bytes()
    # (A low threshold: large bodies' events cross the socket too.)
    for limits in (IndexerLimits(), IndexerLimits(large_body_threshold=64)):
        ok, events, message = by_worker(data, limits)
        assert ok
        assert (events, message) == in_place(data, limits)


def test_large_bodies_cross_the_socket_as_their_events() -> None:
    data = (CORPUS / "apple_alternative_related.eml").read_bytes()
    ok, events, _ = by_worker(data, IndexerLimits(large_body_threshold=64))
    assert ok and any(isinstance(e, LargeBodyStart) for e in events)  # type: ignore[attr-defined]


def read_frame(sock: socket.socket) -> bytes:
    def exact(n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = sock.recv(n - len(out))
            assert chunk, "the worker closed its socket"
            out += chunk
        return out
    return exact(int.from_bytes(exact(4), "little"))


def test_a_worker_process_answers_each_request_and_stops_at_the_end() -> None:
    parent, child = socket.socketpair()
    process = subprocess.Popen([sys.executable, "-m", "duck.mime.worker",
                                str(child.fileno())], pass_fds=(child.fileno(),))
    child.close()
    try:
        data = (CORPUS / "digest.eml").read_bytes()
        for _ in range(2):
            parent.sendall(frame(pickle.dumps((data, IndexerLimits(), ()))))
            ok, events, message, made = pickle.loads(read_frame(parent))
            assert ok and (events, message) == in_place(data, IndexerLimits()) and made == {}
        # Not a message: an error reply, and the worker goes on.
        parent.sendall(frame(pickle.dumps((12345, IndexerLimits(), ()))))
        ok, text = pickle.loads(read_frame(parent))
        assert not ok and text.startswith("TypeError")
        parent.shutdown(socket.SHUT_WR)
        assert process.wait(timeout=30) == 0
    finally:
        parent.close()
        if process.poll() is None:
            process.kill()


def test_a_request_over_the_cap_ends_the_worker() -> None:
    from duck.mime.worker import serve

    parent, child = socket.socketpair()
    worker = threading.Thread(target=serve, args=(child,))
    worker.start()
    parent.sendall((MAX_REQUEST + 1).to_bytes(4, "little"))
    worker.join(timeout=30)
    assert not worker.is_alive()
    parent.close()
    child.close()
