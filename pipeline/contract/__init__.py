"""The output contract: the published tables, their columns and the words in them.

- :mod:`pipeline.contract.schema`: every table's Arrow schema and the schema version.
- :mod:`pipeline.contract.vocabulary`: segments, placements, kinds and the ranking group.
- :mod:`pipeline.contract.counts`: what a run counted (``manifest.json``'s ``counts``), typed.
- :mod:`pipeline.contract.manifest`: the manifest written beside the tables.
"""
