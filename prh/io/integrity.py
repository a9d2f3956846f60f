"""Check a run's Zarr stores end to end. Snakemake compares times, not contents, so a store damaged after its
job finished (a truncated chunk, a disk error) plans nothing until a job fails reading it; this reads every
chunk of every array of every store under ``data/`` and ``results/`` and lists the damaged ones, each with
the array that fails, and the jobs that would remake them (a dry run with ``--forcerun`` on those stores).

    python -m prh.io.integrity                  # in the run's folder; exit status 1 when a store is damaged
    python -m prh.io.integrity RUN --snakefile path/to/Snakefile
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import warnings
from pathlib import Path

from prh.io.workflow import dry_run_jobs

REPO = Path(__file__).resolve().parents[2]


def run_stores(root: str | Path) -> list[Path]:
    """Every Zarr store (a folder named ``*.zarr``, not one inside another) under the run's ``data/`` and
    ``results/``, sorted."""
    root = Path(root)
    found = [p for top in ("data", "results") for p in sorted((root / top).rglob("*.zarr")) if p.is_dir()]
    return [p for p in found if not any(parent.suffix == ".zarr" for parent in p.relative_to(root).parents)]


def store_problem(path: str | Path) -> str | None:
    """What is wrong with a store, read end to end (every chunk of every array, one first-axis chunk at a time):
    the ``FeatureStoreError`` message naming the store and the array, or None for a sound store."""
    import zarr

    from prh.io.features import FeatureStoreError, read_array

    try:
        with warnings.catch_warnings():  # Snakemake's .snakemake_timestamp in a store is not zarr's
            warnings.simplefilter("ignore", UserWarning)
            node = zarr.open(str(path), mode="r")  # a group (features, states) or one array (images)
            members = node.members(max_depth=None) if isinstance(node, zarr.Group) else [(Path(path).stem, node)]
            arrays = [(name, a) for name, a in members if isinstance(a, zarr.Array)]
    except Exception as err:
        return f"{path}: cannot be opened as a Zarr store ({err.__class__.__name__}: {err})"
    try:
        for name, array in arrays:
            step = max(array.chunks[0], 1) if array.ndim else 1
            for start in range(0, array.shape[0], step) if array.ndim else [None]:
                read_array(path, array, name, ... if start is None else slice(start, start + step))
    except FeatureStoreError as err:
        return str(err)
    return None


def damaged_stores(stores: list[Path]) -> dict[Path, str]:
    """Store -> what is wrong with it, for every damaged one of ``stores`` (``store_problem``)."""
    problems = {path: store_problem(path) for path in stores}
    return {path: problem for path, problem in problems.items() if problem}


def remaking_jobs(root: str | Path, stores: list[Path], snakefile: str | Path) -> list[tuple[str, str]]:
    """(rule, first output) of every job a dry run plans when the stores are forced to be made again: the
    jobs that write them and every job downstream of them."""
    root = Path(root)
    targets = [str(Path(s).relative_to(root)) for s in stores]
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(root), "-n", "--cores", "1"]
    out = subprocess.run([*cmd, "--forcerun", *targets], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"the dry run with --forcerun failed:\n{out.stderr[-3000:]}")
    return [(job["rule"], job["output"]) for job in dry_run_jobs(out.stdout)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", default=".", help="the run's folder (its working directory)")
    parser.add_argument("--snakefile", help="the workflow's Snakefile (default: the run's own, else this repository's)")
    args = parser.parse_args(argv)
    root = Path(args.run).resolve()
    stores = run_stores(root)
    damaged = damaged_stores(stores)
    if not damaged:
        print(f"{len(stores)} stores read end to end: no damaged store")
        return 0
    print(f"{len(damaged)} of {len(stores)} stores are damaged:")
    for problem in damaged.values():
        print(f"  {problem}")
    snakefile = args.snakefile or (root / "Snakefile" if (root / "Snakefile").exists() else REPO / "Snakefile")
    jobs = remaking_jobs(root, list(damaged), snakefile)
    print(f"{len(jobs)} jobs remake them and what reads them (rule: first output):")
    for rule, output in jobs:
        print(f"  {rule}: {output}")
    print("to remake them: snakemake --forcerun " + " ".join(str(p.relative_to(root)) for p in damaged))
    return 1


if __name__ == "__main__":
    sys.exit(main())
