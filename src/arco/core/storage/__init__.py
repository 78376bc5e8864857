"""Object storage: one interface, backends chosen by URL."""

from arco.core.storage.base import Match, ObjectMeta, ObjectStore, PutMode
from arco.core.storage.factory import (
    StoreConfig,
    check_signer_store_url,
    open_signer_store,
    open_store,
    parse_store_url,
)
from arco.core.storage.faults import FaultInjectingStore, SimulatedCrash
from arco.core.storage.obstore_backend import LocalFolderStore, ObstoreStore
from arco.core.storage.signing import HmacSigner

__all__ = [
    "FaultInjectingStore",
    "HmacSigner",
    "LocalFolderStore",
    "Match",
    "ObjectMeta",
    "ObjectStore",
    "ObstoreStore",
    "PutMode",
    "SimulatedCrash",
    "StoreConfig",
    "check_signer_store_url",
    "open_signer_store",
    "open_store",
    "parse_store_url",
]
