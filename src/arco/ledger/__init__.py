"""Tier 2, operational facts: an append-only event ledger folded into Parquet.

* :mod:`~arco.ledger.events` - the envelope and the registry of event types;
* :mod:`~arco.ledger.log` - appending to and listing the immutable ledger;
* :mod:`~arco.ledger.compactor` - folding new events into a Tier-2 domain (a compaction);
* :mod:`~arco.ledger.folds` - the pure folds: runs, tasks, materializations, lineage;
* :mod:`~arco.ledger.external_lineage`, :mod:`~arco.ledger.automation_events` -
  the event types (and state tables) of OpenLineage and automation;
* :mod:`~arco.ledger.external_folds` - the OpenLineage folds and the rule each
  field follows.

Imports only ``arco.core`` and ``arco.domain``; never the catalog.
"""
