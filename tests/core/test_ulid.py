"""Arco's ULIDs: python-ulid's format and ordering, made faster."""

from __future__ import annotations

import os
import random
import threading
import time

from ulid import ULID

from arco.core import ids
from arco.core.ids import new_ulid, ulid_text


def test_ulid_text_is_the_ulid_encoding() -> None:
    rng = random.Random(7)
    cases = [(0, 0), (2**48 - 1, 2**80 - 1), (1, 1)]
    cases += [(rng.getrandbits(48), rng.getrandbits(80)) for _ in range(5000)]
    for ms, randomness in cases:
        expected = ULID.from_bytes(ms.to_bytes(6, "big") + randomness.to_bytes(10, "big"))
        assert ulid_text(ms, randomness) == str(expected)


def test_new_ulids_carry_the_time_and_increase_across_threads() -> None:
    before = time.time()
    made: list[list[str]] = [[] for _ in range(4)]

    def make(k: int) -> None:
        made[k].extend(new_ulid() for _ in range(5000))

    threads = [threading.Thread(target=make, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [u for part in made for u in part]
    assert len(set(every)) == len(every)
    for part in made:  # each thread sees them increase, as python-ulid's generator
        assert part == sorted(part)
    stamp = ULID.from_str(every[0]).timestamp
    assert before - 1 <= stamp <= time.time() + 1


def test_same_millisecond_ulids_count_up_and_a_clock_step_back_is_not_followed(
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    now = [1_700_000_000_000 * 1_000_000]
    monkeypatch.setattr(ids, "_ulid_last", [0, 0])  # this process's sequence, restored after
    monkeypatch.setattr(ids.time, "time_ns", lambda: now[0])
    first, second = ULID.from_str(new_ulid()), ULID.from_str(new_ulid())
    assert first.milliseconds == second.milliseconds == 1_700_000_000_000
    assert int(second) == int(first) + 1
    now[0] -= 5_000_000  # the clock steps back 5 ms
    third = ULID.from_str(new_ulid())
    assert int(third) == int(second) + 1
    now[0] += 10_000_000
    fourth = ULID.from_str(new_ulid())
    assert fourth.milliseconds == 1_700_000_000_005
    assert int(fourth) > int(third)


def test_a_forked_child_does_not_continue_the_parents_sequence() -> None:
    # Parent and child counting up from the same inherited ULID would collide:
    # a dask worker's asset value key equalled another process's (CI, 2026-12-06).
    future_ms = int(time.time() * 1000) + 60_000
    ids._ulid_last[0], ids._ulid_last[1] = future_ms, 12345
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ULID and leave at once
        os.write(write, new_ulid().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    parent = new_ulid()
    assert parent == ulid_text(future_ms, 12346)  # the parent goes on counting
    assert child != parent
    assert ULID.from_str(child).milliseconds < future_ms  # the child's own clock
    ids._ulid_last[0], ids._ulid_last[1] = 0, 0
