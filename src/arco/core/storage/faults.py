"""A fault-injecting store wrapper for crash and failure tests.

Each call to the wrapped store gets a sequence number. A test arms a fault for
call ``n`` (or for calls matching an operation and key pattern): ``fail`` raises
a transient :class:`~arco.core.errors.StorageError`; ``crash`` raises
:class:`SimulatedCrash`, a ``BaseException`` that no retry loop catches, which
stands for the process dying at that point. ``when="after"`` performs the call
first, so its effect is durable even though the caller never sees the result.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from arco.core.errors import StorageError
from arco.core.storage.base import ObjectMeta, ObjectStore, PutMode

Op = Literal["get", "get_range", "head", "list", "delete", "put", "sign", "signed_get_url"]


class SimulatedCrash(BaseException):
    """The simulated death of the process at a storage call."""


@dataclass
class Fault:
    """One armed fault."""

    kind: Literal["fail", "crash"]
    when: Literal["before", "after"]
    call: int | None = None
    op: str | None = None
    key_glob: str | None = None
    times: int = 1

    def matches(self, n: int, op: str, key: str) -> bool:
        """True if this fault fires for call ``n`` of ``op`` on ``key``."""
        if self.call is not None and self.call != n:
            return False
        if self.op is not None and self.op != op:
            return False
        return self.key_glob is None or fnmatch.fnmatch(key, self.key_glob)


@dataclass
class CallRecord:
    """One call the wrapper saw."""

    n: int
    op: str
    key: str


@dataclass
class FaultInjectingStore(ObjectStore):
    """Wraps a store; records every call and fires armed faults."""

    inner: ObjectStore
    faults: list[Fault] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.url = self.inner.url

    def arm(
        self,
        kind: Literal["fail", "crash"],
        when: Literal["before", "after"] = "before",
        *,
        call: int | None = None,
        op: str | None = None,
        key_glob: str | None = None,
        times: int = 1,
    ) -> Fault:
        """Arm a fault; ``call`` counts from 0 over this wrapper's lifetime."""
        fault = Fault(kind=kind, when=when, call=call, op=op, key_glob=key_glob, times=times)
        self.faults.append(fault)
        return fault

    def reset(self) -> None:
        """Forget armed faults and recorded calls."""
        self.faults.clear()
        self.calls.clear()

    def _fire(self, when: str, n: int, op: str, key: str) -> None:
        for fault in self.faults:
            if fault.when == when and fault.times > 0 and fault.matches(n, op, key):
                fault.times -= 1
                if fault.kind == "crash":
                    raise SimulatedCrash(f"crash {when} call {n} ({op} {key})")
                raise StorageError(f"injected failure {when} call {n} ({op} {key})")

    def _begin(self, op: str, key: str) -> int:
        with self._lock:
            n = len(self.calls)
            self.calls.append(CallRecord(n, op, key))
        self._fire("before", n, op, key)
        return n

    def get(self, key: str) -> tuple[bytes, str]:
        """Read, with faults."""
        n = self._begin("get", key)
        result = self.inner.get(key)
        self._fire("after", n, "get", key)
        return result

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Ranged read, with faults."""
        n = self._begin("get_range", key)
        result = self.inner.get_range(key, start, end)
        self._fire("after", n, "get_range", key)
        return result

    def head(self, key: str) -> ObjectMeta:
        """HEAD, with faults."""
        n = self._begin("head", key)
        result = self.inner.head(key)
        self._fire("after", n, "head", key)
        return result

    def list(self, prefix: str) -> Iterator[ObjectMeta]:
        """Listing, with faults (materialised so an 'after' fault sees it complete)."""
        n = self._begin("list", prefix)
        result = list(self.inner.list(prefix))
        self._fire("after", n, "list", prefix)
        return iter(result)

    def delete(self, key: str) -> None:
        """Delete, with faults."""
        n = self._begin("delete", key)
        self.inner.delete(key)
        self._fire("after", n, "delete", key)

    def put(self, key: str, data: bytes, mode: PutMode = "overwrite") -> str:
        """Write, with faults."""
        n = self._begin("put", key)
        result = self.inner.put(key, data, mode)
        self._fire("after", n, "put", key)
        return result

    def sign(self, key: str, ttl_seconds: int) -> str:
        """Sign, with faults."""
        n = self._begin("sign", key)
        result = self.inner.sign(key, ttl_seconds)
        self._fire("after", n, "sign", key)
        return result

    def signed_get_url(self, key: str, ttl_seconds: int) -> str | None:
        """Presign, with faults."""
        n = self._begin("signed_get_url", key)
        result = self.inner.signed_get_url(key, ttl_seconds)
        self._fire("after", n, "signed_get_url", key)
        return result
