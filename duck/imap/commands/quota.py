"""QUOTA (RFC 9208): one quota root per user, named "", with the STORAGE resource."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import no
from ..grammar.cmd_ext import GetQuota, SetQuota
from ..grammar.cmd_mailbox import GetQuotaRoot
from ..grammar.responses import QuotaData, QuotaResource, QuotaRootData
from ..namespaces import open_mailbox
from .registry import command
from .states import AUTHENTICATED

if TYPE_CHECKING:
    from ..context import CommandContext

ROOT = ""


async def _quota(s: CommandContext) -> QuotaData:
    assert s.user is not None
    used, limit = await s.store.quota(s.user.id)
    # RFC 9208 §5.1: STORAGE is counted in units of 1024 octets.
    return QuotaData(ROOT, (QuotaResource("STORAGE", (used + 1023) // 1024, limit // 1024),))


@command(GetQuota, AUTHENTICATED)
async def getquota(s: CommandContext, cmd: GetQuota) -> None:
    """GETQUOTA "" (the only root)."""
    if cmd.root != ROOT:
        raise no("no such quota root", "NONEXISTENT")
    await s.send(await _quota(s))


@command(GetQuotaRoot, AUTHENTICATED)
async def getquotaroot(s: CommandContext, cmd: GetQuotaRoot) -> None:
    """GETQUOTAROOT mailbox: every mailbox is under the user's root."""
    assert s.user is not None
    _, place, _ = await open_mailbox(s, cmd.mailbox)
    if not place.own:
        # Another owner's mailbox counts toward that owner's quota, which is not
        # this user's to see: no root is named (RFC 9208 §4.3 allows none).
        await s.send(QuotaRootData(cmd.mailbox, ()))
        return
    await s.send(QuotaRootData(cmd.mailbox, (ROOT,)), await _quota(s))


@command(SetQuota, AUTHENTICATED)
async def setquota(s: CommandContext, cmd: SetQuota) -> None:
    """Quotas are set by the administrator (HTTP API), not by users."""
    raise no("quota is set by the administrator", "NOPERM")
