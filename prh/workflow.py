"""Glue for Snakemake ``script:`` entry points: logging into the rule's ``log:`` file."""

from __future__ import annotations

import contextlib
import logging
import traceback
from pathlib import Path


@contextlib.contextmanager
def logged(log_path: str | Path):
    """Send stdout, stderr (tqdm bars included) and ``logging`` to ``log_path`` for the body of the block;
    an exception is written there with its traceback before it propagates."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as log:
        logging.basicConfig(stream=log, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            try:
                yield logging.getLogger("prh")
            except BaseException:
                traceback.print_exc(file=log)
                raise
