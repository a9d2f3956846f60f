"""Where a cold run of the workflow spends its time: one run from scratch in a temporary copy of the repository
(its committed files and any changes to them), with the local profile, then the breakdown as parts of one run:

- wall time, and the core-seconds it offered (wall × cores);
- the jobs' work: CPU inside each job's ``logged`` block (the library call a script makes), summed;
- the jobs' start-up: CPU before that block (interpreter, imports, Snakemake's script preamble), summed;
- Snakemake's own CPU (its main process: parsing, planning, scheduling, spawning, benchmarks);
- the rest of the CPU (processes that log nothing: shell jobs, Snakemake's helpers);
- idle core-seconds: offered minus all CPU used.

Start-up and work come from the two lines ``prh.io.workflow.logged`` writes in every job's log.

    python benchmarks/workflow_bench.py                      # the default config.yaml, all cores
    python benchmarks/workflow_bench.py --config .test/config.yaml --keep /tmp/run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prh.analysis.results_page import machine

REPO = Path(__file__).resolve().parents[1]

# Snakemake in a child process that reports its own CPU (not its jobs') when it exits.
SNAKEMAKE = """
import atexit, json, resource, sys
def report():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open("snakemake-cpu.json", "w") as f:
        json.dump({"user": usage.ru_utime, "system": usage.ru_stime}, f)
atexit.register(report)
from snakemake.cli import main
sys.argv = ["snakemake", *sys.argv[1:]]
main()
"""


def copy_repository(dest: Path) -> None:
    """The repository's tracked files as they are in the working tree (uncommitted edits included)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        src, out = REPO / name, dest / name
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():  # scripts/<topic>/prh: links stay links
            out.symlink_to(os.readlink(src))
        elif src.is_file():
            shutil.copy2(src, out)


def job_lines(workdir: Path) -> dict[str, list[float]]:
    """Start-up and work (wall, CPU) of every job, from the lines ``logged`` writes in the logs."""
    pattern = re.compile(r"INFO (start-up|work): ([\d.]+) s wall, ([\d.]+) s CPU")
    sums = {"start-up": [0.0, 0.0, 0], "work": [0.0, 0.0, 0]}
    for log in (workdir / "logs").rglob("*.log"):
        for kind, wall, cpu in pattern.findall(log.read_text(errors="replace")):
            sums[kind][0] += float(wall)
            sums[kind][1] += float(cpu)
            sums[kind][2] += 1
    return sums


def breakdown(wall: float, cores: int, children_cpu: float, snakemake_cpu: float, jobs: dict) -> list[tuple]:
    """(part, core-seconds, share of the run's core-seconds) rows."""
    offered = wall * cores
    work, startup = jobs["work"][1], jobs["start-up"][1]
    rest = max(children_cpu - snakemake_cpu - work - startup, 0.0)
    idle = max(offered - children_cpu, 0.0)
    rows = [
        ("jobs' work (inside logged)", work),
        ("jobs' start-up (interpreter, imports)", startup),
        ("Snakemake's own process", snakemake_cpu),
        ("other processes", rest),
        ("idle cores", idle),
    ]
    return [(name, value, value / offered) for name, value in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="a config file to run in place of config.yaml")
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--keep", help="run in this folder (created) and keep it")
    parser.add_argument("snakemake_args", nargs="*", help="more Snakemake arguments, after --")
    args = parser.parse_args()

    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="prh-workflow-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    copy_repository(workdir)
    command = [sys.executable, "-c", SNAKEMAKE, "--profile", "profiles/local", "--cores", str(args.cores)]
    if args.config:
        shutil.copy(args.config, workdir / "config.yaml")
    command += args.snakemake_args
    start = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"the run failed ({workdir}):\n{done.stderr[-3000:]}")
    children = os.times()
    snakemake = json.loads((workdir / "snakemake-cpu.json").read_text())
    jobs = job_lines(workdir)
    n_jobs = len(re.findall(r"^Finished jobid", done.stderr, re.M))
    rows = breakdown(wall, args.cores, children.children_user + children.children_system,
                     snakemake["user"] + snakemake["system"], jobs)  # fmt: skip
    print(f"cold run: {wall:.0f} s wall ({wall / 60:.1f} min) on {args.cores} cores, {n_jobs} jobs, "
          f"{jobs['work'][2]} of them logged; {machine()}")  # fmt: skip
    print(f"{'part':<40} {'core-s':>8} {'share':>6}")
    for name, value, share in rows:
        print(f"{name:<40} {value:>8.0f} {share:>6.1%}")
    per_job = jobs["start-up"][1] / max(jobs["start-up"][2], 1)
    print(f"start-up per job: {per_job:.2f} s CPU; Snakemake per job: {rows[2][1] / max(n_jobs, 1):.2f} s CPU")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
