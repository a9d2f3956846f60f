"""The workflow's helpers: logging into a job's ``log:`` file, atomic writes (an output appears at its path
complete or not at all, even when the job is killed), and what a rule derives from the library: its code
inputs (``library_modules``) and its settings (``settings_of``)."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

# mallopt(3) parameters of glibc's malloc.h
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def reuse_freed_memory() -> bool:
    """Have glibc's malloc keep freed memory for the next allocation rather than hand it back to the kernel.

    By default every block above 32 MB (a convolution's activations at batch 32, a pair job's N × N kernel) is
    a fresh ``mmap``, unmapped on free, so each batch faults in, and the kernel zeroes, all of its pages
    again: half of EfficientNet-Lite0's embedding time was spent in the kernel (``benchmarks/allocation_bench.py``).
    No arithmetic changes; a process's resident memory stays at its peak. Returns whether the allocator is
    glibc's and took the settings (elsewhere, nothing is changed).
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # 2**31 - 1: never trim the heap's top; 0 mmapped blocks: every block comes from the reusable heap
    return bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)) and bool(mallopt(_M_MMAP_MAX, 0))


def process_age() -> float | None:
    """Seconds since this process started (Linux ``/proc``; None elsewhere): with ``time.process_time()`` at
    the same moment, what a job spent starting up (interpreter, imports) before its work."""
    try:
        started = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])  # field 22, in ticks
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    return max(uptime - started / os.sysconf("SC_CLK_TCK"), 0.0)


# The lines ``logged`` writes first and last; benchmarks/workflow_bench.py reads them from every job's log.
STARTUP_LINE = "start-up: %.3f s wall, %.3f s CPU"
WORK_LINE = "work: %.3f s wall, %.3f s CPU"


@contextlib.contextmanager
def logged(log_path: str | Path):
    """Send stdout, stderr (tqdm bars included) and ``logging`` to ``log_path`` for the body of the block;
    an exception is written there with its traceback. Every job's script runs in this block, so it also sets
    the allocator up for a job (``reuse_freed_memory``) and logs how long the process took to start (its
    imports) and how long the work in the block took (``STARTUP_LINE``, ``WORK_LINE``). A Snakemake job then
    exits, with status 1 after an exception, which is printed once, in its log (Snakemake names the log, and
    shows it with ``--show-failed-logs``); in a library call the exception propagates."""
    age, cpu, wall = process_age(), time.process_time(), time.perf_counter()
    reuse_freed_memory()
    job, status = _a_snakemake_job(), 0
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as log:
        logging.basicConfig(stream=log, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
        logger = logging.getLogger("prh")
        if age is not None:
            logger.info(STARTUP_LINE, age, cpu)
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            try:
                yield logger
            except BaseException:
                traceback.print_exc(file=log)
                if not job:
                    raise
                status = 1
        if not status:
            logger.info(WORK_LINE, time.perf_counter() - wall, time.process_time() - cpu)
    if job:  # the log file is closed, so written out
        _exit_now(status)


def _a_snakemake_job() -> bool:
    """Whether this process is a job's script run by Snakemake (its preamble defines ``snakemake`` in
    ``__main__``), whose ``logged`` block is the script's last statement (tests/test_layout.py)."""
    main = sys.modules.get("__main__")
    kind = type(getattr(main, "snakemake", None))
    return (kind.__module__, kind.__name__) == ("snakemake.iocontainers", "Snakemake")


def _exit_now(status: int = 0) -> None:
    """End a job whose outputs are written (or whose error is logged): skip the interpreter's teardown
    (finalising torch, numba, zarr and their thousands of modules), which took a heavy job 1.5–2 s of CPU and
    did nothing a job needs, and, after an error, Python's second printing of it."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def dry_run_jobs(text: str) -> list[dict]:
    """The jobs a ``snakemake --dry-run`` printed: rule, first output, wildcards, input, threads and resources
    of each."""
    import re

    jobs = []
    for block in re.split(r"\n(?=[ \t]*(?:\[[^\]]+\]\n|rule |localrule ))", text):  # grouped jobs are indented
        rule = re.search(r"^\s*(?:local)?rule (\w+):", block, re.M)
        if not rule:
            continue
        fields = dict(re.findall(r"^\s+(\w+): (.*)$", block, re.M))
        resources = dict(re.findall(r"(\w+)=([^,]+)", fields.get("resources", "")))
        jobs.append({"rule": rule.group(1), "output": fields.get("output", "").split(", ")[0],
                     "wildcards": fields.get("wildcards", ""), "input": fields.get("input", ""),
                     "resources": resources, "threads": int(fields.get("threads", 1))})  # fmt: skip
    return jobs


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary sibling of ``path`` to write to, a file or a folder (a Zarr store); it is renamed
    onto ``path`` when the block ends without an error and removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    _remove(tmp)
    try:
        yield tmp
        if tmp.is_dir():
            _remove(path)
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def write_table(table, path: str | Path, provenance: dict | None = None) -> None:
    """Write a polars table to parquet atomically, with ``provenance`` as JSON in the file's metadata
    (``prh_provenance``); byte-stable for equal inputs (no statistics, no timestamps)."""
    import json

    metadata = {"prh_provenance": json.dumps(provenance, sort_keys=True)} if provenance else None
    with atomic_path(path) as tmp:
        table.write_parquet(tmp, statistics=False, metadata=metadata)


def library_modules(
    script: str | Path, root: str | Path, package: str = "prh", start: str | Path | None = None
) -> list[str]:
    """Files of ``package`` (in the folder ``root``) that running ``script`` imports, directly or through
    other modules (each parent package's ``__init__.py`` included), sorted: a rule lists them as inputs, so
    editing any of them reruns exactly the rules whose scripts depend on it. Paths are relative to ``start``
    (the working directory) where the package lies inside it, so a project moved or copied with its
    ``.snakemake`` folder plans nothing; absolute otherwise (a workflow run from outside its folder)."""
    root = Path(root).resolve()

    def files_of(module: str) -> list[Path]:
        """The package __init__ files on the way to ``module`` and its own file, if it is in the package."""
        parts = module.split(".")
        if parts[0] != package:
            return []
        found = []
        for i in range(1, len(parts) + 1):
            base = root.joinpath(*parts[:i])
            for candidate in (base / "__init__.py", base.with_suffix(".py")):
                if candidate.is_file():
                    found.append(candidate)
        return found

    seen: set[Path] = set()
    pending = [Path(script).resolve()]
    while pending:
        for module in _imports(pending.pop()):
            for path in files_of(module):
                if path not in seen:
                    seen.add(path)
                    pending.append(path)
    start = Path(start or Path.cwd()).resolve()
    return sorted(str(p.relative_to(start)) if p.is_relative_to(start) else str(p) for p in seen)


def _imports(path: Path) -> tuple[str, ...]:
    """The modules a file imports, function-level imports included: ``import a.b`` gives ``a.b``, ``from a
    import b`` gives ``a`` and ``a.b``. Parsed once per version of the file (planning asks for each module
    once per rule that runs it)."""
    stat = path.stat()
    return _parsed_imports(path, stat.st_mtime_ns, stat.st_size)


@functools.cache
def _parsed_imports(path: Path, mtime_ns: int, size: int) -> tuple[str, ...]:
    import ast

    modules = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return tuple(modules)


def settings_of(function: str, *sections: dict, root: str | Path | None = None) -> dict:
    """The settings a library function takes, read from config sections: a rule's params.

    Each parameter of ``function`` that names a key of a section, or ``<subsection>_<key>`` for a key of one
    of its subsections (``bootstrap_seed``: ``bootstrap.seed``), gets that setting; the first section that
    has it wins. So a setting is named in the schema and in the function that uses it, and a job's params
    are exactly the settings its function takes: changing any other setting reruns nothing.

    Parameters
    ----------
    function : str
        ``"<path>:<name>"``, the file relative to ``root`` (the repository) and the function's name; read
        with ``ast``, so that planning imports nothing.
    *sections : dict
        Config sections, validated (defaults filled in).
    root : str or Path, optional
        Where ``path`` is; the repository by default.

    Returns
    -------
    dict
        Parameter name -> setting, in the function's parameter order.
    """
    import ast

    path, name = function.split(":")
    root = Path(root) if root else Path(__file__).resolve().parents[2]
    tree = ast.parse((root / path).read_text())
    node = next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name), None)
    if node is None:
        raise ValueError(f"settings_of('{function}'): {path} defines no function {name}")
    found = {}
    for arg in node.args.posonlyargs + node.args.args + node.args.kwonlyargs:
        for section in sections:
            if arg.arg in section:
                found[arg.arg] = section[arg.arg]
                break
            sub = next((k for k, v in section.items() if isinstance(v, dict) and arg.arg.startswith(f"{k}_")), None)
            if sub and arg.arg.removeprefix(f"{sub}_") in section[sub]:
                found[arg.arg] = section[sub][arg.arg.removeprefix(f"{sub}_")]
                break
    return found
