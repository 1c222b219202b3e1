"""Group commit of small writes: batching, durability before acknowledgement, failures, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from faultmaven.stores.group_commit import GroupCommit


class _Store:
    def __init__(self, *, fail_batches: set[int] | None = None, delay: float = 0.01) -> None:
        self.batches: list[list[int]] = []
        self.committed: list[int] = []
        self.fail_batches = fail_batches or set()
        self.delay = delay

    async def write(self, items: Sequence[int]) -> None:
        number = len(self.batches)
        self.batches.append(list(items))
        await asyncio.sleep(self.delay)  # the transaction is in progress: more rows arrive meanwhile
        if number in self.fail_batches:
            raise OSError("disk I/O error")
        self.committed.extend(items)


async def test_concurrent_writers_share_batches_and_return_only_once_committed() -> None:
    store = _Store()
    group = GroupCommit(store.write)

    async def writer(item: int) -> int:
        await asyncio.sleep(item * 0.001)  # requests arrive over ~50 ms; each write takes 10 ms
        await group.submit(item)
        assert item in store.committed  # acknowledged only after its batch committed
        return item

    done = await asyncio.gather(*(writer(i) for i in range(50)))
    assert done == list(range(50))
    assert sorted(store.committed) == list(range(50))
    assert store.committed == list(range(50))  # arrival order kept
    assert 2 <= len(store.batches) <= 20
    assert store.batches[0] == [0]  # a lone writer does not wait for company


async def test_batches_are_capped() -> None:
    store = _Store()
    group = GroupCommit(store.write, max_batch=7)
    await asyncio.gather(*(group.submit(i) for i in range(30)))
    assert all(len(batch) <= 7 for batch in store.batches)
    assert store.committed == list(range(30))


async def test_a_failed_batch_fails_its_writers_and_the_next_batch_still_commits() -> None:
    store = _Store(fail_batches={0})
    group = GroupCommit(store.write)
    first = asyncio.create_task(group.submit(1))
    await asyncio.sleep(0)  # batch 0 = [1] is being written
    later = [asyncio.create_task(group.submit(i)) for i in (2, 3)]
    with pytest.raises(OSError, match="disk I/O error"):
        await first
    await asyncio.gather(*later)
    assert store.committed == [2, 3]
    # and a later writer starts a fresh flush
    await group.submit(4)
    assert store.committed == [2, 3, 4]


async def test_a_cancelled_writer_does_not_break_the_batch() -> None:
    store = _Store(delay=0.05)
    group = GroupCommit(store.write)
    first = asyncio.create_task(group.submit(1))
    await asyncio.sleep(0)
    second = asyncio.create_task(group.submit(2))
    third = asyncio.create_task(group.submit(3))
    await asyncio.sleep(0.01)
    second.cancel()  # its client went away; its row is already queued and is still written
    await first
    await third
    with pytest.raises(asyncio.CancelledError):
        await second
    assert store.committed == [1, 2, 3]
