"""What the pipeline decides, written once for every engine and command.

A business rule lives here as a small numpy kernel over columns (one batch of
rules, offers or bundles at a time) or as a declaration (an order, a message):
the local engine calls the kernels on whole columns, the Spark engine on Arrow
batches through ``mapInArrow``, ``basket explain`` on one rule. Adding a
measure, a filter or a score is one change here; the engines only move data.

- :mod:`pipeline.policy.measures`: the interest measures and significance.
- :mod:`pipeline.policy.rules`: which rules are kept (confidence, lift,
  redundancy, significance; post-purchase thresholds).
- :mod:`pipeline.policy.offers`: margins, scores, the order of offers and the top-k.
- :mod:`pipeline.policy.bundles`: which itemsets are bundles and at what price.
- :mod:`pipeline.policy.guards`: the memory guards and their messages.
- :mod:`pipeline.policy.segments`: which segments are mined on their own.
"""
