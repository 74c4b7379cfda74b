"""The memory guards: stop a run whose itemsets or rules would exhaust memory, with advice.

Both engines count what they are about to build and call these checks, so a
run stops with the same message (exit 2) wherever it runs.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.config import MineConfig, RulesConfig
from pipeline.errors import ConfigError, InputDataError

#: Itemset lengths named in the guard's message at most.
_SHOWN_LENGTHS = 6


def check_itemsets(by_length: Mapping[int, int], min_count: int, config: MineConfig, estimated: bool) -> None:
    """Raise when there are more than ``mine.max_itemsets`` frequent itemsets.

    ``by_length`` counts them per length; ``estimated`` says whether they are
    counted before mining (the local engine) or found by it (MLlib cannot count first).
    """
    # A count past what the counter can hold comes back negative: that is "too many" too.
    overflow = any(n < 0 for n in by_length.values())
    total = sum(abs(n) for n in by_length.values())
    if config.max_itemsets is None or (total <= config.max_itemsets and not overflow):
        return
    parts = [
        f"{n:,} of length {k}" if n >= 0 else f"too many to count of length {k}" for k, n in sorted(by_length.items())
    ]
    if len(parts) > _SHOWN_LENGTHS:
        # Dense data has itemsets of hundreds of lengths: the shortest and the longest say enough.
        parts = [*parts[: _SHOWN_LENGTHS // 2], "...", *parts[-(_SHOWN_LENGTHS // 2) :]]
    shown = ", ".join(parts)
    many = "more than 9,223,372,036,854,775,807" if overflow else f"{total:,}"
    raise ConfigError(
        f"mine.max_itemsets: this data {'would give' if estimated else 'gave'} {many} frequent itemsets "
        f"({shown}), more than {config.max_itemsets:,}; raise mine.min_support (now {min_count} baskets) or lower "
        f"mine.max_len (now {config.max_len}), or raise mine.max_itemsets if the memory allows"
    )


def check_memory_budget(lines: int, peak_bytes: int, budget_gb: float | None, names: str) -> None:
    """Raise when ``lines`` order lines of the exports ``names`` need more than ``memory_budget`` gigabytes."""
    if budget_gb is None or peak_bytes <= budget_gb * 1e9:
        return
    raise ConfigError(
        f"memory_budget: {names} hold about {lines:,} order lines; the local engine needs about "
        f"{peak_bytes / 1e9:.1f} GB for them, more than memory_budget = {budget_gb:g} GB. Raise memory_budget if "
        "the machine has the memory, read fewer days at a time (input.paths, clean.window_days), "
        'or run on Spark (engine = "spark", docs/spark.md)'
    )


def candidate_rules(by_length: Mapping[int, int]) -> int:
    """How many candidate rules the itemsets give: ``k`` per itemset of ``k >= 2`` products."""
    return sum(k * n for k, n in by_length.items() if k >= 2)


def check_candidates(by_length: Mapping[int, int], config: RulesConfig) -> None:
    """Raise before building more than ``rules.max_candidates`` candidate rules.

    Every itemset of k >= 2 products gives k candidates, known before any is
    built; long itemsets (dense data, no ``mine.max_len``) give tens of millions.
    """
    candidates = candidate_rules(by_length)
    if config.max_candidates is not None and candidates > config.max_candidates:
        raise ConfigError(
            f"rules.max_candidates: {sum(by_length.values()):,} itemsets give {candidates:,} candidate rules, "
            f"more than {config.max_candidates:,}; raise mine.min_support or lower mine.max_len, "
            "or raise rules.max_candidates if the memory allows (about 1 GB per 10 million rules kept)"
        )


def no_baskets_error(names: str, rows_in: int, rejected: Mapping[str, int]) -> InputDataError:
    """The error of a run whose exports (``names``) left no basket: no line at all, or every line rejected."""
    if rows_in == 0:
        return InputDataError(f"{names}: no order lines (only a header?); check the export")
    shown = ", ".join(f"{k} {v}" for k, v in rejected.items() if v)
    return InputDataError(
        f"{names}: no baskets left after cleaning {rows_in} rows (rejected: {shown}); "
        "check the clean.* settings, as_of and the column mapping"
    )
