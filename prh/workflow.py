"""Glue for Snakemake ``script:`` entry points: logging into the rule's ``log:`` file, and atomic writes
(an output appears at its path complete or not at all, even when the job is killed)."""

from __future__ import annotations

import contextlib
import logging
import os
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


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary sibling of ``path`` to write to; it is renamed onto ``path`` when the block ends
    without an error and removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_table(table, path: str | Path, provenance: dict | None = None) -> None:
    """Write a polars table to parquet atomically, with ``provenance`` as JSON in the file's metadata
    (``prh_provenance``); byte-stable for equal inputs (no statistics, no timestamps)."""
    import json

    metadata = {"prh_provenance": json.dumps(provenance, sort_keys=True)} if provenance else None
    with atomic_path(path) as tmp:
        table.write_parquet(tmp, statistics=False, metadata=metadata)
