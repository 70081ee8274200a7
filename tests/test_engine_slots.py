"""The in-flight cap's slots: never more holders than slots, first come first served, a stop fails
the waiters that asked for it, and a cancelled waiter loses no slot."""

from __future__ import annotations

import asyncio

import pytest

from wizsync.engine import Stopped
from wizsync.engine.slots import Slots


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_waiters_get_slots_in_order_and_never_more_than_the_limit() -> None:
    async def main() -> list[int]:
        slots = Slots(2, Stopped)
        order: list[int] = []
        holding = 0
        peak = 0

        async def user(i: int) -> None:
            nonlocal holding, peak
            await slots.acquire()
            holding += 1
            peak = max(peak, holding)
            order.append(i)
            await asyncio.sleep(0)
            holding -= 1
            slots.release()

        await asyncio.gather(*(user(i) for i in range(20)))
        assert peak == 2
        assert not slots.locked()
        return order

    assert asyncio.run(main()) == list(range(20))


def test_stop_fails_stoppable_waiters_and_later_acquires_but_not_the_others() -> None:
    async def main() -> None:
        slots = Slots(1, Stopped)
        await slots.acquire()
        stoppable = asyncio.ensure_future(slots.acquire())
        unstoppable = asyncio.ensure_future(slots.acquire(stoppable=False))
        await _settle()
        slots.stop()
        await _settle()
        assert isinstance(stoppable.exception(), Stopped)
        with pytest.raises(Stopped):
            await slots.acquire()
        assert not unstoppable.done()
        slots.release()
        await unstoppable  # handed the slot the holder gave back
        slots.release()
        assert not slots.locked()

    asyncio.run(main())


def test_a_cancelled_waiter_loses_no_slot_even_when_handed_one_as_it_is_cancelled() -> None:
    async def main() -> None:
        slots = Slots(1, Stopped)
        await slots.acquire()
        first = asyncio.ensure_future(slots.acquire())
        second = asyncio.ensure_future(slots.acquire())
        await _settle()
        slots.release()  # handed to `first`, which is cancelled before it runs
        first.cancel()
        await _settle()
        assert first.cancelled()
        await second  # the slot went on to the next waiter
        third = asyncio.ensure_future(slots.acquire())
        await _settle()
        third.cancel()  # cancelled while waiting: taken off the queue
        await _settle()
        slots.release()
        assert not slots.locked()
        await slots.acquire()

    asyncio.run(main())
