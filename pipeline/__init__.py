"""Market-basket mining: transaction exports in, cross-sell recommendations out.

The Python API that the ``basket`` command wraps::

    from pipeline import load_config, run
    result = run(load_config("configs/default.toml", ["mine.min_support=0.01"]))
    result.run_dir  # OUTPUT/runs/<run_id>, now pointed at by OUTPUT/latest
"""

from pipeline.config import Config, load_config
from pipeline.errors import ConfigError, ExitCode, InputDataError, OutputError, PipelineError
from pipeline.flow.run import RunResult, run
from pipeline.read.lookup import offers_for_cart, offers_for_item

__all__ = [
    "Config",
    "ConfigError",
    "ExitCode",
    "InputDataError",
    "OutputError",
    "PipelineError",
    "RunResult",
    "load_config",
    "offers_for_cart",
    "offers_for_item",
    "run",
]
