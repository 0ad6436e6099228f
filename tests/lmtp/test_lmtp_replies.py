"""Typed replies and their wire form."""

from __future__ import annotations

import pytest

from duck.lmtp.replies import (
    FAILURE_REPLIES,
    EnhancedStatus,
    Failure,
    Reply,
    failure_reply,
    reply,
)


def test_single_line() -> None:
    assert reply(250, "2.1.5", "Recipient OK").to_bytes() == b"250 2.1.5 Recipient OK\r\n"


def test_multi_line_without_status() -> None:
    r = reply(250, None, "host", "PIPELINING", "SIZE 10")
    assert r.to_bytes() == b"250-host\r\n250-PIPELINING\r\n250 SIZE 10\r\n"


def test_multi_line_with_status_on_every_line() -> None:
    # RFC 2034 section 3: the enhanced code is repeated on each line.
    r = reply(452, "4.2.2", "one", "two")
    assert r.to_bytes() == b"452-4.2.2 one\r\n452 4.2.2 two\r\n"


@pytest.mark.parametrize("make", [
    lambda: reply(250, "5.0.0", "mismatch"),
    lambda: reply(199, None, "low"),
    lambda: reply(250, "2.0", "short"),
    lambda: reply(250, None),
    lambda: reply(250, None, "a\r\nb"),
    lambda: EnhancedStatus(3, 0, 0),
])
def test_invalid_replies(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_failure_table_covers_every_failure_with_matching_codes() -> None:
    assert set(FAILURE_REPLIES) == set(Failure)
    for failure, r in FAILURE_REPLIES.items():
        assert r.status is not None and r.status.klass == r.code // 100, failure
    assert (FAILURE_REPLIES[Failure.UNKNOWN_USER].code,
            str(FAILURE_REPLIES[Failure.UNKNOWN_USER].status)) == (550, "5.1.1")
    assert str(FAILURE_REPLIES[Failure.OVER_QUOTA].status) == "5.2.2"
    assert str(FAILURE_REPLIES[Failure.OVER_QUOTA_TEMPORARY].status) == "4.2.2"
    assert str(FAILURE_REPLIES[Failure.UNAVAILABLE].status) == "4.3.0"


def test_failure_text_cannot_inject_lines() -> None:
    r = failure_reply(Failure.OVER_QUOTA, "full\r\n250 2.0.0 fake")
    assert r.to_bytes().count(b"\r\n") == 1
    assert isinstance(r, Reply) and r.code == 552
