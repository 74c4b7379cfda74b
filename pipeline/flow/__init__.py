"""The orchestration: the order the stages run in, written once for every command and engine.

- :mod:`pipeline.flow.inputs`: exports and catalog in, clean lines and baskets out (``run``, ``validate``,
  ``tune``, ``evaluate``).
- :mod:`pipeline.flow.offers`: one segment's baskets in, every offer out: the chain itemsets -> rules ->
  ranking -> placements, up-sell, bundles, products, over an engine (:class:`pipeline.flow.offers.OfferEngine`).
- :mod:`pipeline.flow.run`: the nightly job: the chain, then gates and an atomic publish.
- :mod:`pipeline.flow.tune` and :mod:`pipeline.flow.evaluate`: the same chain, for candidate settings
  and on a training period.
- :mod:`pipeline.flow.publish`, :mod:`pipeline.flow.gates`, :mod:`pipeline.flow.lock`: the output directory.
"""
