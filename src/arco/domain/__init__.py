"""The versioned-Parquet-domain protocol that every domain shares (Tier 1 and Tier 2).

A domain is a chain of manifests, each naming its state files (Parquet) by
hash, and one head pointer changed by compare-and-swap under a lease lock:

* :mod:`~arco.domain.store` - read a snapshot, commit a change (the commit path);
* :mod:`~arco.domain.types` - snapshots, changes and the state protocol;
* :mod:`~arco.domain.merge` - which state files a commit writes, merges and keeps;
* :mod:`~arco.domain.lock` - the lease lock that orders writers;
* :mod:`~arco.domain.manifest` - manifests and the head pointer;
* :mod:`~arco.domain.tableset` - state files: sorted bases and deltas;
* :mod:`~arco.domain.extfiles` - other files a commit wrote and hashed;
* :mod:`~arco.domain.retention`, :mod:`~arco.domain.verify`, :mod:`~arco.domain.repair` -
  history floors, chain verification and re-pointing a lost head.

Imports only ``arco.core``.
"""
