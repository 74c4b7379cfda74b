"""Which segments are mined on their own, and with which threshold.

Segment ``*`` (every basket) is always mined. With ``segment.column``, each
value with at least ``segment.min_baskets`` baskets is mined apart too, at
``segment.min_support`` when set; smaller segments use the ``*`` rows (the
storefront falls back to them). The value ``*`` is reserved.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from pipeline.config import Config, MineConfig
from pipeline.contract.vocabulary import ALL_SEGMENTS

log = logging.getLogger(__name__)


def segments_to_mine(sizes: Mapping[str, int], config: Config) -> list[str]:
    """``*`` first, then each segment big enough to mine on its own, by name; ``sizes`` counts baskets per value."""
    found = [ALL_SEGMENTS]
    if config.segment.column is None:
        return found
    sizes = dict(sizes)
    if ALL_SEGMENTS in sizes:
        log.warning(
            "segment value %r is reserved for all customers: its %d baskets are mined with everyone's only",
            ALL_SEGMENTS,
            sizes.pop(ALL_SEGMENTS),
        )
    small = sorted(v for v, n in sizes.items() if n < config.segment.min_baskets)
    if small:
        log.info(
            "segments below segment.min_baskets = %d use the global rules: %s",
            config.segment.min_baskets,
            ", ".join(small[:20]) + (" ..." if len(small) > 20 else ""),
        )
    return found + sorted(v for v, n in sizes.items() if n >= config.segment.min_baskets)


def segment_mine_config(segment: str, config: Config) -> MineConfig:
    """The mining settings of ``segment``: ``segment.min_support`` for a segment of its own, when set."""
    if segment != ALL_SEGMENTS and config.segment.min_support is not None:
        return config.mine.model_copy(update={"min_support": config.segment.min_support, "min_count": None})
    return config.mine
