"""FaultInjectingStore: failures and simulated crashes before or after any call."""

from __future__ import annotations

import pytest

from arco.core.errors import ObjectNotFoundError, StorageError
from arco.core.storage import FaultInjectingStore, Match, ObjectStore, SimulatedCrash, open_store


@pytest.fixture
def inner() -> ObjectStore:
    return open_store("memory://")


@pytest.fixture
def faulty(inner: ObjectStore) -> FaultInjectingStore:
    return FaultInjectingStore(inner)


def test_simulated_crash_escapes_except_exception() -> None:
    assert issubclass(SimulatedCrash, BaseException)
    assert not issubclass(SimulatedCrash, Exception)
    caught_by_exception_handler = False

    def retry_loop() -> None:
        nonlocal caught_by_exception_handler
        try:
            raise SimulatedCrash("die")
        except Exception:  # what a retry loop catches
            caught_by_exception_handler = True

    with pytest.raises(SimulatedCrash):
        retry_loop()
    assert not caught_by_exception_handler


def test_passes_calls_through_and_counts_them(
    faulty: FaultInjectingStore, inner: ObjectStore
) -> None:
    assert faulty.url == inner.url
    version = faulty.put("a/1", b"one")
    assert faulty.get("a/1") == (b"one", version)
    assert faulty.get_range("a/1", 0, 2) == b"on"
    assert faulty.head("a/1").size == 3
    assert [m.key for m in faulty.list("a")] == ["a/1"]
    faulty.delete("a/1")
    assert not inner.exists("a/1")
    assert [(c.n, c.op, c.key) for c in faulty.calls] == [
        (0, "put", "a/1"),
        (1, "get", "a/1"),
        (2, "get_range", "a/1"),
        (3, "head", "a/1"),
        (4, "list", "a"),
        (5, "delete", "a/1"),
    ]


def test_fail_before_writes_nothing(faulty: FaultInjectingStore, inner: ObjectStore) -> None:
    faulty.arm("fail", "before", op="put")
    with pytest.raises(StorageError, match="injected failure before"):
        faulty.put("k", b"data")
    assert not inner.exists("k")
    # The fault fired once (times=1): the retry goes through.
    version = faulty.put("k", b"data")
    assert inner.get("k") == (b"data", version)


def test_fail_is_a_plain_storage_error_not_a_crash(faulty: FaultInjectingStore) -> None:
    faulty.arm("fail", op="get")
    with pytest.raises(StorageError, match="injected failure") as info:
        faulty.get("k")
    assert type(info.value) is StorageError
    assert not isinstance(info.value, ObjectNotFoundError)


def test_crash_after_leaves_the_write_durable(
    faulty: FaultInjectingStore, inner: ObjectStore
) -> None:
    faulty.arm("crash", "after", op="put")
    with pytest.raises(SimulatedCrash, match="crash after call 0"):
        faulty.put("k", b"durable")
    assert inner.get("k")[0] == b"durable"


def test_crash_before_leaves_nothing(faulty: FaultInjectingStore, inner: ObjectStore) -> None:
    faulty.arm("crash", "before", op="put")
    with pytest.raises(SimulatedCrash, match="crash before"):
        faulty.put("k", b"lost")
    assert not inner.exists("k")


def test_fail_after_a_cas_hides_a_successful_write(
    faulty: FaultInjectingStore, inner: ObjectStore
) -> None:
    v1 = inner.put("ptr", b"1")
    faulty.arm("fail", "after", op="put", key_glob="ptr")
    with pytest.raises(StorageError):
        faulty.put("ptr", b"2", mode=Match(v1))
    data, v2 = inner.get("ptr")
    assert data == b"2"  # the caller saw an error but the swap happened
    assert v2 != v1


def test_call_number_targets_one_call(faulty: FaultInjectingStore, inner: ObjectStore) -> None:
    faulty.arm("fail", "before", call=2)
    faulty.put("k0", b"0")  # call 0
    faulty.put("k1", b"1")  # call 1
    with pytest.raises(StorageError, match="call 2"):
        faulty.put("k2", b"2")  # call 2
    faulty.put("k3", b"3")  # call 3
    assert sorted(m.key for m in inner.list("")) == ["k0", "k1", "k3"]
    assert [c.n for c in faulty.calls] == [0, 1, 2, 3]  # the failed call is recorded


def test_op_filter(faulty: FaultInjectingStore, inner: ObjectStore) -> None:
    inner.put("k", b"v")
    faulty.arm("fail", op="head")
    assert faulty.get("k")[0] == b"v"  # other ops unaffected
    with pytest.raises(StorageError):
        faulty.head("k")
    assert faulty.head("k").size == 1


def test_key_glob_filter(faulty: FaultInjectingStore, inner: ObjectStore) -> None:
    faulty.arm("crash", "before", op="put", key_glob="manifests/*.pointer.json", times=5)
    faulty.put("manifests/catalog/00000000000000000001.json", b"m")
    faulty.put("ledger/catalog/x.json", b"e")
    with pytest.raises(SimulatedCrash):
        faulty.put("manifests/catalog.pointer.json", b"p")
    assert inner.exists("manifests/catalog/00000000000000000001.json")
    assert inner.exists("ledger/catalog/x.json")
    assert not inner.exists("manifests/catalog.pointer.json")


def test_times_limits_how_often_a_fault_fires(
    faulty: FaultInjectingStore, inner: ObjectStore
) -> None:
    fault = faulty.arm("fail", op="put", times=3)
    for _ in range(3):
        with pytest.raises(StorageError):
            faulty.put("k", b"v")
    assert fault.times == 0
    assert not inner.exists("k")
    faulty.put("k", b"v")
    assert inner.exists("k")


def test_faults_fire_in_arming_order_and_reset_clears(faulty: FaultInjectingStore) -> None:
    faulty.arm("crash", "before", op="get")
    faulty.arm("fail", "before", op="get")
    with pytest.raises(SimulatedCrash):
        faulty.get("k")
    with pytest.raises(StorageError, match="injected"):
        faulty.get("k")
    with pytest.raises(ObjectNotFoundError):  # both spent: the real error shows
        faulty.get("k")
    faulty.arm("fail", op="put")
    faulty.reset()
    assert faulty.calls == []
    assert faulty.faults == []
    faulty.put("k", b"v")
    assert [c.op for c in faulty.calls] == ["put"]


def test_list_fault_after_sees_the_whole_listing(
    faulty: FaultInjectingStore, inner: ObjectStore
) -> None:
    for i in range(3):
        inner.put(f"d/{i}", b"")
    faulty.arm("fail", "after", op="list")
    with pytest.raises(StorageError):
        faulty.list("d")  # raised at the call, not lazily while iterating
    assert sorted(m.key for m in faulty.list("d")) == ["d/0", "d/1", "d/2"]


def test_sign_is_wrapped() -> None:
    from arco.core.storage import HmacSigner

    signed = open_store("memory://", signer=HmacSigner(b"s", "http://arco"))
    faulty = FaultInjectingStore(signed)
    assert faulty.sign("k", 60).startswith("http://arco/blob/k?")
    faulty.arm("crash", op="sign")
    with pytest.raises(SimulatedCrash):
        faulty.sign("k", 60)
    assert [c.op for c in faulty.calls] == ["sign", "sign"]
