"""The single-machine engine: pandas, numpy, scipy's sparse matrices and pyfim in this process.

Each module is a stage, named after the data it produces: ``ingest`` (lines),
``clean`` (clean lines and rejects), ``catalog``, ``baskets``, ``itemsets``,
``rules``, ``recommendations`` (ranked offers), ``postpurchase``, ``upsell``
and ``bundles``. What a rule, an offer or a bundle is comes from
:mod:`pipeline.policy`; the order the stages run in from :mod:`pipeline.flow`.
The Spark engine (:mod:`pipeline.spark`) reads the catalog and fingerprints
input files with this engine's readers (both are small, driver-side work).
"""
