"""The Iceberg REST catalog over Arco's Tier-1 catalog (``/iceberg`` on the API server).

``metadata`` applies commits with pyiceberg's own table-metadata models,
``service`` runs each operation as one linearizable catalog commit, ``routes``
is the HTTP surface and ``errors`` the spec's ``ErrorModel``.
"""
