"""Snakemake's own cost per job, with its scheduler loop as Snakemake 9 ships it and with
``prh.io.scheduler.one_pending_wakeup`` (what ``rules/common.smk`` applies), in one run of this script.

A workflow of short jobs that each read the same inputs (as the pair jobs read their library modules), run
locally on 2 cores twice, each time from scratch: Snakemake's passes over its ready jobs (``--verbose``:
"Resources before job selection"), the CPU of Snakemake's own process (not its jobs') and the wall time.

    python benchmarks/scheduler_bench.py                 # 120 jobs of 0.3 s, 25 inputs each
    python benchmarks/scheduler_bench.py --jobs 240
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workflow_bench import SNAKEMAKE  # Snakemake in a child process that reports its own CPU at exit

WORKFLOW = """
{setup}
rule all:
    input: expand("out/{{i}}.txt", i=range({jobs}))
rule one:
    input: expand("inputs/{{m}}.txt", m=range({inputs}))
    output: "out/{{i}}.txt"
    shell: "sleep {seconds}; touch {{output}}"
"""
FIX = "from prh.io.scheduler import one_pending_wakeup\none_pending_wakeup()"


def run(folder: Path, setup: str, jobs: int, inputs: int, seconds: float) -> dict:
    """One run from scratch: passes, Snakemake's CPU (user + system) and wall time."""
    folder.mkdir()
    (folder / "inputs").mkdir()
    for m in range(inputs):
        (folder / "inputs" / f"{m}.txt").touch()
    (folder / "Snakefile").write_text(WORKFLOW.format(setup=setup, jobs=jobs, inputs=inputs, seconds=seconds))
    start = time.monotonic()
    cmd = [sys.executable, "-c", SNAKEMAKE, "--cores", "2", "--verbose", "all"]
    done = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    wall = time.monotonic() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    cpu = json.loads((folder / "snakemake-cpu.json").read_text())
    passes = (done.stdout + done.stderr).count("Resources before job selection")
    return {"passes": passes, "cpu": cpu["user"] + cpu["system"], "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=120)
    parser.add_argument("--inputs", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=0.3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = {name: run(Path(tmp) / name, setup, args.jobs, args.inputs, args.seconds)
                for name, setup in (("as shipped", ""), ("one pending wake-up", FIX))}  # fmt: skip
    print(f"{args.jobs} jobs of {args.seconds} s, {args.inputs} inputs each, 2 cores")
    print(f"{'scheduler':22s} {'passes':>7s} {'Snakemake CPU':>14s} {'per job':>8s} {'wall':>7s}")
    for name, r in rows.items():
        print(f"{name:22s} {r['passes']:7d} {r['cpu']:12.1f} s {r['cpu'] / args.jobs:6.3f} s {r['wall']:5.1f} s")
    shipped, fixed = rows.values()
    ratios = {key: shipped[key] / fixed[key] for key in ("passes", "cpu", "wall")}
    print("ratios (as shipped / one pending wake-up): passes {passes:.1f}x, Snakemake CPU {cpu:.1f}x, "
          "wall {wall:.2f}x".format(**ratios))  # fmt: skip


if __name__ == "__main__":
    main()
