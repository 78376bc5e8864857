"""Head pointer and manifest records, and their JSON encoding.

The pointer is the only mutable object of a domain; it names one immutable
manifest and carries the SHA-256 of that manifest's bytes. Each manifest names
its parent (path and SHA-256) and every file it references (path, SHA-256,
size, row count), which is what ``arco verify`` walks.
"""

from __future__ import annotations

import json
import json.decoder
from collections.abc import Callable
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from functools import cached_property
from typing import Any

from arco.core.actor import clean_actor
from arco.core.errors import IntegrityError, ObjectNotFoundError
from arco.core.ids import sha256_hex
from arco.core.keys import Keys
from arco.core.storage import ObjectStore
from arco.domain import packed

POINTER_FORMAT = "arco.pointer/1"
MANIFEST_FORMAT = "arco.manifest/1"


@dataclass(frozen=True)
class FileEntry:
    """One immutable state file referenced by a manifest."""

    path: str
    table: str
    kind: str  # "base" or "delta"
    level: int
    min_version: int
    max_version: int
    sha256: str
    size: int
    rows: int
    #: For a base sorted by its table's ``sort_key``: key range, byte range and
    #: SHA-256 of each row group and of the footer (``tableset.encode_sorted_base``),
    #: so a reader can fetch and verify one group. For a delta of a table with
    #: ``delta_ranges``: the range of its sort keys and primary keys
    #: (``tableset.delta_index``), so a reader skips it unless it may hold the key.
    #: Absent on other files.
    index: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The manifest's JSON record of this entry (no ``index`` key when absent)."""
        raw = {name: getattr(self, name) for name in _ENTRY_FIELDS}
        if raw["index"] is None:
            del raw["index"]
        else:
            raw["index"] = packed.pack_index(raw["index"])
        return raw

    @cached_property
    def json_text(self) -> str:
        """:meth:`to_json` as the manifest writes it (sorted keys, no spaces).

        Encoded once per entry: most entries of a manifest pass unchanged from its
        parent, and their encoding was most of a manifest's.
        """
        return _dumps(self.to_json())


@dataclass(frozen=True)
class ParentRef:
    """The previous manifest in the chain."""

    path: str
    sha256: str


@dataclass(frozen=True, eq=False)
class Manifest:
    """An immutable description of one version of a domain's state."""

    domain: str
    version: int
    commit_id: str
    committed_at: str
    fencing_token: int
    writer: str
    parent: ParentRef | None
    files: tuple[FileEntry, ...]
    operation: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    #: Who made the commit (token subject or OS user; see :mod:`arco.core.actor`),
    #: next to ``writer``, the process. None in manifests written before actors were.
    actor: str | None = None

    def __eq__(self, other: object) -> bool:
        # By value, across the lazily decoded subclass too (see from_bytes).
        if not isinstance(other, Manifest):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]  # mutable dicts inside, as before

    def to_bytes(self) -> bytes:
        """Stable JSON encoding (sorted keys, no spaces) of the manifest."""
        # Exactly json.dumps of the whole record with sort_keys (a test holds them
        # equal), put together from its members in sorted order so that each file
        # entry's text, encoded once, is reused by every later manifest. A base's
        # index and a large operation record are written packed (ADR 030).
        parent = {"path": self.parent.path, "sha256": self.parent.sha256} if self.parent else None
        files = ",".join([f.json_text for f in self.files])
        text = (
            f'{{"actor":{_dumps(self.actor)},"commit_id":{_dumps(self.commit_id)},'
            f'"committed_at":{_dumps(self.committed_at)},"domain":{_dumps(self.domain)},'
            f'"fencing_token":{_dumps(self.fencing_token)},"files":[{files}],'
            f'"format":{_dumps(MANIFEST_FORMAT)},"meta":{_dumps(self.meta)},'
            f'"operation":{packed.pack_operation(_dumps(self.operation))},'
            f'"parent":{_dumps(parent)},'
            f'"version":{_dumps(self.version)},"writer":{_dumps(self.writer)}}}'
        )
        return text.encode()

    @classmethod
    def from_bytes(cls, data: bytes, *, key: str = "", lazy_operation: bool = False) -> Manifest:
        """Decode, raising :class:`IntegrityError` on anything malformed.

        ``lazy_operation``: leave the ``operation`` record as JSON text until it is
        first used. Readers of the head need only the files; a bulk transaction's
        operation lists every change (5,000 creates: 245 KB, stored compressed in
        19 KB since ADR 030). ``arco verify`` decodes every manifest whole.
        """
        try:
            split = _split_operation(data) if lazy_operation else None
            if split is not None:
                raw, op_text = split
            else:
                raw, op_text = json.loads(data), None
            if raw.get("format") != MANIFEST_FORMAT:
                raise ValueError(f"unknown format {raw.get('format')!r}")
            parent = raw.get("parent")
            fields: dict[str, Any] = {
                "domain": str(raw["domain"]),
                "version": int(raw["version"]),
                "commit_id": str(raw["commit_id"]),
                "committed_at": str(raw["committed_at"]),
                "fencing_token": int(raw["fencing_token"]),
                "writer": str(raw["writer"]),
                "actor": clean_actor(raw.get("actor")),
                "parent": ParentRef(**parent) if parent else None,
                "files": tuple(_entry(f) for f in raw["files"]),
                "meta": dict(raw.get("meta") or {}),
            }
            if op_text is not None:
                # The text goes through the property's setter (see the class).
                return _LazyOperationManifest(**fields, operation=op_text)  # type: ignore[arg-type]
            operation = packed.unpack_operation(raw.get("operation"))
            return cls(**fields, operation=dict(operation or {}))
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"{key}: malformed manifest ({exc})") from exc


class _LazyOperationManifest(Manifest):
    """A decoded :class:`Manifest` whose ``operation`` is parsed on first use.

    The dataclass ``__init__`` stores ``operation`` through this property's setter
    (as the JSON text), so equality, ``repr`` and every reader see the parsed dict.
    """

    def _get_operation(self) -> dict[str, Any]:
        value = self.__dict__["_operation"]
        if isinstance(value, str):
            try:
                value = dict(packed.unpack_operation(json.loads(value)) or {})
            except (ValueError, TypeError) as exc:
                raise IntegrityError(
                    f"manifest {self.version}: malformed operation ({exc})"
                ) from exc
            self.__dict__["_operation"] = value
        return value  # type: ignore[no-any-return]

    def _set_operation(self, value: dict[str, Any] | str) -> None:
        self.__dict__["_operation"] = value

    operation = property(_get_operation, _set_operation)


def _entry(raw: dict[str, Any]) -> FileEntry:
    index = raw.get("index")
    if isinstance(index, dict):
        # Packed members become PackedRows (ADR 030); a malformed one is a ValueError.
        raw = {**raw, "index": packed.unpack_index(index)}
    return FileEntry(**raw)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


_ENTRY_FIELDS = [f.name for f in dataclass_fields(FileEntry)]


# The C scanners behind json.loads (typeshed does not declare them).
_SCANSTRING: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_SCAN_ONCE: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


_BEFORE_OPERATION = [
    "actor",
    "commit_id",
    "committed_at",
    "domain",
    "fencing_token",
    "files",
    "format",
    "meta",
]
_AFTER_OPERATION = ["parent", "version", "writer"]


def _split_operation(data: bytes) -> tuple[dict[str, Any], str] | None:
    """The members of a manifest other than ``operation``, and that member's JSON text.

    Relies on the layout :meth:`Manifest.to_bytes` writes (sorted keys, no spaces):
    the members before ``operation`` are decoded one by one with ``json``'s own C
    scanner, ``operation``'s value is skipped up to the top-level ``,"parent":``
    (the last one in the text: only ``version`` and ``writer``, a number and an
    escaped string, follow it), and the rest is decoded. None when the text has
    any other shape (the caller then decodes it whole).
    """
    try:
        text = data.decode()
        end = text.rfind(',"parent":')
        if end < 0 or not text.startswith('{"'):
            return None
        raw: dict[str, Any] = {}
        idx = 1
        while True:
            if text[idx] != '"':
                return None
            name, idx = _SCANSTRING(text, idx + 1)
            if text[idx] != ":":
                return None
            idx += 1
            if name == "operation":
                if idx >= end:
                    return None
                op_text = text[idx:end]
                break
            value, idx = _SCAN_ONCE(text, idx)
            raw[name] = value
            if idx >= end or text[idx] != ",":
                return None
            idx += 1
        tail = json.loads("{" + text[end + 1 :])
        # Exactly the members to_bytes writes, in its order: nothing else can hide
        # inside the skipped text.
        if list(raw) != _BEFORE_OPERATION or list(tail) != _AFTER_OPERATION:
            return None
        raw.update(tail)
        return raw, op_text
    except (ValueError, StopIteration, IndexError, UnicodeDecodeError):
        return None


@dataclass(frozen=True)
class Pointer:
    """The head pointer of a domain."""

    domain: str
    version: int
    manifest: str
    manifest_sha256: str
    commit_id: str
    fencing_token: int
    updated_at: str

    def to_bytes(self) -> bytes:
        """JSON encoding; ``commit_id`` makes every write unique (no ETag ABA)."""
        raw = {**self.__dict__, "format": POINTER_FORMAT}
        return json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes, *, key: str = "") -> Pointer:
        """Decode, raising :class:`IntegrityError` on anything malformed."""
        try:
            raw = json.loads(data)
            if raw.get("format") != POINTER_FORMAT:
                raise ValueError(f"unknown format {raw.get('format')!r}")
            raw.pop("format")
            return cls(**raw)
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"{key}: malformed pointer ({exc})") from exc


def fetch_manifest(
    store: ObjectStore, keys: Keys, key: str, sha256: str, *, lazy_operation: bool = False
) -> Manifest:
    """GET the manifest ``key`` of ``keys``' scope and check it against its reference.

    Raises :class:`IntegrityError` when the reference leaves the scope, the object
    is missing, or its bytes do not match ``sha256``. ``lazy_operation``: see
    :meth:`Manifest.from_bytes` (the bytes are checked whole either way).
    """
    if not keys.is_within(key):
        raise IntegrityError(f"{key}: manifest reference points outside scope {keys.scope}")
    try:
        data, _ = store.get(key)
    except ObjectNotFoundError as exc:
        raise IntegrityError(f"{key}: manifest referenced by the chain is missing") from exc
    if sha256_hex(data) != sha256:
        raise IntegrityError(f"{key}: manifest checksum does not match its reference")
    return Manifest.from_bytes(data, key=key, lazy_operation=lazy_operation)
