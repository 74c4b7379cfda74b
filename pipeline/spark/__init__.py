"""The same job on Apache Spark (``engine = "spark"``), for exports one machine cannot hold.

Every stage runs on Spark DataFrames and no stage brings the order lines,
baskets, itemsets or rules to the driver: only counts, the (small) catalog and
the run's summary numbers pass through it. The stages mirror the
single-machine modules and give the same answers (``tests/test_spark.py``):

- :mod:`pipeline.spark.lines`: exports in, clean lines and rejects out
  (:mod:`pipeline.local.ingest` and :mod:`pipeline.local.clean`);
- :mod:`pipeline.spark.mining`: baskets, frequent itemsets with MLlib's
  ``FPGrowth`` and association rules (:mod:`pipeline.local.baskets`,
  :mod:`pipeline.local.itemsets`, :mod:`pipeline.local.rules`);
- :mod:`pipeline.spark.offers`: catalog join, ranking with window functions,
  products and bundles (:mod:`pipeline.local.recommendations`,
  :mod:`pipeline.local.products`, :mod:`pipeline.local.bundles`);
- :mod:`pipeline.spark.kernels`: the policy's numpy kernels (measures, rule
  verdicts, margins, scores, top-k, bundle prices) on the executors;
- :mod:`pipeline.spark.tables`: each published table written by one executor
  as the single Parquet file of the output contract;
- :mod:`pipeline.spark.engine`: the engine the chain
  (:func:`pipeline.flow.offers.offer_segments`) runs on; :func:`pipeline.flow.run.run` publishes.

What a rule, an offer or a bundle is comes from :mod:`pipeline.policy`, as on the local engine.

pyspark is an optional extra (``pip install 'basket-pipeline[spark]'``);
nothing here is imported by the single-machine engine. ``docs/spark.md`` says
how to run it on a cluster.
"""
