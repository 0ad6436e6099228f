"""Dovecot imaptest's scripted compliance suite against a running duck, through the
imaptest kit's ``run-bench.sh`` (its per-group PASS/FAIL/SKIP table), with what the
kit's script does not set up itself:

- the users: ``testuser1..N@example.com`` with password ``pass``, created through
  duck's HTTP API (existing ones are kept);
- a second user: the groups that log in as two users (``urlauth2``) need imaptest's
  ``user2=``, which ``run-bench.sh`` does not pass; without it imaptest skips them.
  ``run-bench.sh`` runs the binary ``$IMAPTEST``, so that is pointed at a wrapper
  that adds ``user2=testuser2@example.com``. That user's connection SELECTs its own
  test mailbox, which is created for it;
- ``urlauth2``'s missing ``messages: 2``: imaptest's default for ``messages`` went
  from "all" to 0 (upstream commit 0de0dbf, 2021) and upstream gave the header to
  every test that appends messages (9592688, ``urlauth`` among them) but this one,
  so its first ``FETCH 1:2`` names messages an empty mailbox does not have: BAD from
  any server (Dovecot 2.3 answers "Invalid messageset"). ``run-bench.sh`` reads the
  tests from ``$TESTS``: a copy of the kit's with that one header line added
  (``--stock-tests`` runs the kit's unchanged).

    python -m bench.imaptest_suite --kit DIR --imap-port 1143 --api-port 8080

``DIR`` is where the kit is installed (``run-bench.sh``, ``imaptest`` and
``tests/``). Loopback only, as ``run-bench.sh`` is; it wipes the test mailbox of
``testuser1``.
"""

from __future__ import annotations

import argparse
import imaplib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

USER_FMT = "testuser%d@example.com"
#: imaptest's default test mailbox (its ``box=``), which the second user SELECTs.
TEST_MAILBOX = "imaptest"


def urlauth2_with_messages(text: str) -> str:
    """``urlauth2`` with ``messages: 2`` in its header (the lines before the first
    empty one), as upstream gave ``urlauth``; a header that has one is kept."""
    header, sep, rest = text.partition("\n\n")
    if any(line.lower().startswith("messages:") for line in header.splitlines()):
        return text
    return header + "\nmessages: 2" + sep + rest


def create_users(host: str, api_port: int, count: int, password: str) -> None:
    """testuser1..count through ``POST /users`` (409, already there, is fine)."""
    for n in range(1, count + 1):
        body = json.dumps({"username": USER_FMT % n, "password": password}).encode()
        request = urllib.request.Request(
            f"http://{host}:{api_port}/users", data=body, method="POST",
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30):
                pass
        except urllib.error.HTTPError as exc:
            if exc.code != 409:
                raise


def create_test_mailbox(host: str, imap_port: int, user: str, password: str) -> None:
    """The second user's test mailbox (NO [ALREADYEXISTS] is fine)."""
    client = imaplib.IMAP4(host, imap_port, timeout=30)
    try:
        client.login(user, password)
        typ, data = client.create(TEST_MAILBOX)
        if typ != "OK" and b"ALREADYEXISTS" not in b" ".join(data):
            raise RuntimeError(f"CREATE {TEST_MAILBOX} as {user}: {typ} {data!r}")
    finally:
        client.logout()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kit", type=Path, required=True,
                        help="the imaptest kit's install directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--imap-port", type=int, default=1143)
    parser.add_argument("--api-port", type=int, default=8080)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--password", default="pass")
    parser.add_argument("--stock-tests", action="store_true",
                        help="run the kit's tests unchanged (urlauth2 fails: see above)")
    args = parser.parse_args()
    kit: Path = args.kit.resolve()
    create_users(args.host, args.api_port, max(args.users, 2), args.password)
    user2 = USER_FMT % 2
    create_test_mailbox(args.host, args.imap_port, user2, args.password)
    with tempfile.TemporaryDirectory(prefix="duck-imaptest-") as tmp:
        work = Path(tmp)
        wrapper = work / "imaptest"
        wrapper.write_text(f'#!/bin/sh\nexec "{kit / "imaptest"}" "$@" user2={user2}\n')
        wrapper.chmod(0o755)
        env = {**os.environ, "IMAPTEST": str(wrapper), "USER_FMT": USER_FMT,
               "PASS": args.password, "COMPLIANCE_USER": USER_FMT % 1, "SKIP_STRESS": "1"}
        if not args.stock_tests:
            tests = work / "tests"
            shutil.copytree(kit / "tests", tests)
            urlauth2 = tests / "urlauth2"
            urlauth2.write_text(urlauth2_with_messages(urlauth2.read_text()))
            env["TESTS"] = str(tests)
        return subprocess.run([str(kit / "run-bench.sh"), args.host, str(args.imap_port)],
                              env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
