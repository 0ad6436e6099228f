"""duck's own rules from the autoreply and forwarding resources."""

from __future__ import annotations

import datetime as dt

from duck.rules.generated import script
from duck.sieve import Redirect, Vacation, compile_script
from duck.store import Autoreply, Forwarding, MailRules
from tests.sieve.helpers import message, outcome

NOW = dt.datetime(2026, 12, 4, 10, 30, tzinfo=dt.UTC)


def test_nothing_to_do() -> None:
    assert script(MailRules(), NOW) is None
    off = Autoreply(False, "x")
    assert script(MailRules(autoreply=off), NOW) is None
    later = Autoreply(True, "x", start=NOW + dt.timedelta(days=1))
    assert script(MailRules(autoreply=later), NOW) is None
    over = Autoreply(True, "x", end=NOW)
    assert script(MailRules(autoreply=over), NOW) is None


def test_forwarding_and_autoreply_compile_and_run() -> None:
    rules = MailRules(Autoreply(True, 'He said "hi" \\ bye', 'Re: "x"', "<b>html</b>"),
                      Forwarding(("a@example.org", "b@example.net"), keep=False))
    source = script(rules, NOW)
    assert source is not None
    compile_script(source)
    result = outcome(source, message("From: x@y.org\nTo: me@example.com", now=NOW))
    redirects = [a for a in result.actions if isinstance(a, Redirect)]
    assert [r.address for r in redirects] == ["a@example.org", "b@example.net"]
    (vacation,) = [a for a in result.actions if isinstance(a, Vacation)]
    assert vacation.mime and vacation.subject == 'Re: "x"' and vacation.period == 86400
    assert "multipart/alternative" in vacation.reason
    plain = script(MailRules(Autoreply(True, 'Say "hi"')), NOW)
    assert plain is not None
    (vacation,) = outcome(plain, message("From: x@y.org", now=NOW)).actions[:1]
    assert isinstance(vacation, Vacation) and vacation.reason == 'Say "hi"'
