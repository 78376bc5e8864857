"""Discovery over both tiers: lineage graphs and the search index.

* :mod:`~arco.discovery.lineage` - asset and column lineage, walked over the folded edges;
* :mod:`~arco.discovery.search` - the search index: tokens, build, refresh and query.
"""
