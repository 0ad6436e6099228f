"""A process that indexes whole messages for another over a socket.

Why: indexing an APPENDed message (MIME structure, envelope, SEARCH text) is pure
Python CPU, ~0.4 ms for one of imaptest's messages, and the serving process's
event loop runs every session on one thread, so that work is done here, on
another core, and only its result crosses back (pickled).

The wire, both ways: a 4-byte little-endian length, then that many bytes of a
pickle. A request is ``(data, limits)``; a reply is ``(True, events, message)``
with what ``MessageIndexer.feed`` then ``close`` return for ``data``, or
``(False, error text)``. Only the parent that started this process writes to its
socket (pickle is not for untrusted input; the socket is a ``socketpair`` end
inherited at start, never a listener).

Run as ``python -m duck.mime.worker FD``.
"""

from __future__ import annotations

import pickle
import socket
import sys

from duck.mime.indexer import MessageIndexer

#: Largest request accepted (a message over it is indexed by the caller itself).
MAX_REQUEST = 64 * 1024 * 1024
_LENGTH = 4


def frame(payload: bytes) -> bytes:
    """``payload`` with its length in front."""
    return len(payload).to_bytes(_LENGTH, "little") + payload


def index_request(payload: bytes) -> bytes:
    """The reply to one request (a pickled ``(data, limits)``)."""
    data, limits = pickle.loads(payload)
    try:
        indexer = MessageIndexer(limits)
        events = indexer.feed(data)
        closing, message = indexer.close()
        return pickle.dumps((True, events + closing, message), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # (a bug of the indexer: the caller indexes itself)
        return pickle.dumps((False, f"{type(exc).__name__}: {exc}"))


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(min(n - len(chunks), 1 << 20))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def serve(sock: socket.socket) -> None:
    """Answer requests on ``sock`` until the other end closes it."""
    while True:
        head = _read_exact(sock, _LENGTH)
        if head is None:
            return
        size = int.from_bytes(head, "little")
        if size > MAX_REQUEST:
            return
        payload = _read_exact(sock, size)
        if payload is None:
            return
        sock.sendall(frame(index_request(payload)))


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
