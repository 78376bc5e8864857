"""Discovery over both tiers: lineage graphs and the search index.

* :mod:`~arco.discovery.lineage` - asset lineage, walked over the folded edges, and coverage;
* :mod:`~arco.discovery.columns` - column lineage, walked alike (:mod:`~arco.discovery.walk`);
* :mod:`~arco.discovery.search` - the search index: tokens, build, refresh and query.
"""
