"""SEARCH uses its indexes: explain() of the exact command the search sends.

The Rust engine plans a ``find`` with any field outside one index as a
collection scan; query.py therefore puts only one index's fields in the first
stage. These tests pin that on both embedded engines.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from store_samples import simple_message

from duck.store import Store, User
from duck.store import query as q
from duck.store.engine import schema
from duck.store.engine.ids import parse_id
from duck.store.index.query import compile_search

pytestmark = [pytest.mark.store, pytest.mark.usefixtures("trigram_index")]


async def _plan(store: Store, mailbox_id: str, query: q.Query) -> str:
    compiled = compile_search(query)
    first = {"mailbox": parse_id(mailbox_id), **compiled.prefilter}
    db = store.database.db

    def explain() -> Any:
        if compiled.covered:
            command: dict[str, Any] = {"find": schema.MESSAGES, "filter": first}
        else:
            command = {"aggregate": schema.MESSAGES, "cursor": {},
                       "pipeline": [{"$match": first}, {"$match": compiled.exact}]}
        return db.command("explain", command)

    return json.dumps(await store.database.run(explain), default=str)


@pytest.mark.parametrize(("query", "index", "covered"), [
    (q.Body("pizza party"), "mailbox_g", False),
    (q.Text("résumé"), "mailbox_g", False),
    (q.Address("from", "dave"), "mailbox_g", False),
    (q.Header("list-id", ""), "mailbox_g", False),
    (q.And((q.Flag("\\Seen", present=False), q.Body("pizza"))), "mailbox_g", False),
    (q.Or((q.Subject("lunch"), q.Body("pizza"))), "mailbox_g", False),
    # Flags, dates and sizes have no index of their own (duck/store/index/layout.py):
    # their first stage scans an index of the mailbox's (whichever the engine picks
    # of those that start with it), never the collection.
    (q.Flag("\\Seen", present=False), "mailbox_", False),
    (q.Flag("$Important"), "mailbox_", False),
    (q.Size("larger", 1000), "mailbox_", False),
    (q.Date("internal", "since", dt.date(2020, 1, 1)), "mailbox_", False),
    (q.And((q.Flag("\\Seen", present=False), q.ModSeq(5))), "mailbox_modseq", False),
    (q.ModSeq(5), "mailbox_modseq", True),
])
async def test_search_stage_one_is_an_index_scan(
    store: Store, user: User, query: q.Query, index: str, covered: bool
) -> None:
    await store.messages.append(user.id, "INBOX", simple_message("lunch", body="pizza\r\n"))
    mailbox_id = (await store.mailboxes.get(user.id, "INBOX")).id
    assert compile_search(query).covered is covered
    plan = await _plan(store, mailbox_id, query)
    assert "IXSCAN" in plan
    assert f'"indexName": "{index}' in plan
    assert "COLLSCAN" not in plan
