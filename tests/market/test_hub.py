"""The stream hub: fan-out without waiting, bounded buffers, private results."""

from __future__ import annotations

import asyncio

from gateway.market.hub import Hub


def test_slow_consumer_is_marked_and_never_blocks_the_publisher() -> None:
    """A full buffer marks the subscriber overflowed (to be closed); others still receive."""

    async def scenario() -> None:
        hub = Hub(buffer=2)
        slow, fast = hub.join("a"), hub.join("b")
        for i in range(3):
            hub.publish({"type": "tick", "seq": i})
            await fast.queue.get()  # the fast one keeps up
        assert slow.overflowed and slow.done.is_set()
        assert slow.queue.qsize() == 2  # bounded: the third message was not kept
        assert not fast.overflowed
        hub.leave(slow)
        assert hub.dropped == 1 and len(hub) == 1

    asyncio.run(scenario())


def test_results_go_only_to_the_wallets_followers() -> None:
    """publish_to reaches the subscribers following that wallet and nobody else."""

    async def scenario() -> None:
        hub = Hub(buffer=8)
        alice, bob, anonymous = hub.join("a"), hub.join("b"), hub.join("c")
        hub.follow(alice, "a" * 64)
        hub.follow(bob, "b" * 64)
        hub.publish_to("a" * 64, {"type": "bet_result", "bet_id": "1"})
        assert alice.queue.qsize() == 1 and bob.queue.qsize() == 0 and anonymous.queue.qsize() == 0
        hub.follow(alice, "c" * 64)  # switching wallets stops the old one's results
        hub.publish_to("a" * 64, {"type": "bet_result", "bet_id": "2"})
        assert alice.queue.qsize() == 1

    asyncio.run(scenario())
