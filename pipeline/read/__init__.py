"""The read side: what the storefront, ``basket explain`` and ``basket report`` read from a published run.

Everything here reads ``OUTPUT/latest`` (or a named run) and its manifest,
validated into :class:`pipeline.config.Config` and
:class:`pipeline.contract.counts.RunCounts`; nothing here mines.
"""
