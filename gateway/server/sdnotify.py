"""systemd's notify protocol: READY=1 once serving, WATCHDOG=1 from the event loop.

A datagram to the AF_UNIX socket named by ``NOTIFY_SOCKET`` (a leading ``@`` is the
abstract namespace). The watchdog pings come from an asyncio task, so they stop when the
event loop is blocked, and systemd (``WatchdogSec=``) restarts a gateway whose loop hangs.
Without ``NOTIFY_SOCKET`` (not under systemd) every call does nothing.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

__all__ = ["Notifier"]


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        # ping at half the interval systemd waits for
        self.watchdog_interval = (
            int(usec) / 2_000_000 if usec.isascii() and usec.isdigit() and mine else None
        )

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, state: str) -> None:
        if not self.address:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto(state.encode(), self.address)
            except OSError:  # systemd went away: nothing useful to do
                pass

    async def watchdog(self) -> None:
        """Ping until cancelled; a blocked event loop stops the pings."""
        interval = self.watchdog_interval
        if interval is None or not self.address:
            return
        while True:
            self.notify("WATCHDOG=1")
            await asyncio.sleep(interval)
