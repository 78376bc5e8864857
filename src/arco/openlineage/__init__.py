"""OpenLineage in Arco: ingest (validate, map, write to the ledger) and emit.

* :mod:`arco.openlineage.schema` validates OpenLineage 2-0-x events;
* :mod:`arco.openlineage.mapping` maps OpenLineage datasets to Arco qualified names;
* :mod:`arco.openlineage.ingest` normalises events into ``openlineage.event`` ledger events;
* :mod:`arco.openlineage.emit` sends Arco's own runs to an OpenLineage endpoint.

The ledger event and its state tables are :mod:`arco.ledger.external_lineage`; the
compactor's folds (and the rule each field follows) :mod:`arco.ledger.external_folds`.
"""
