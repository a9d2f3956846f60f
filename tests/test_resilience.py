"""Killed runs resume: `kill -9` the workflow (Snakemake and its running jobs) while an embedding job writes
its Zarr store, resume, and kill it again while alignment pairs run; the last rerun completes, recomputes
nothing that was complete before either kill, and ends with outputs identical to an uninterrupted run.
The run starts from scratch, so this is also the test that a from-scratch run regenerates the reference
run's data, alignment, bits-per-byte and probes byte for byte."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, digests, snakemake, tiny_config, write_config

pytestmark = pytest.mark.workflow
# The stages this test kills and resumes, the language-model scores and one model's probes; figures left out.
TARGETS = (
    "results/alignment/tiny/alignment.nc",
    "results/lm_scores.parquet",
    "results/probes/models/resnet-test.parquet",
)
KEPT = ["data", "results/features/tiny", "results/states", "results/alignment/tiny/alignment.nc"]
KEPT += ["results/alignment/tiny/pairs", "results/lm_scores", "results/lm_scores.parquet"]
KEPT += [f"results/features/probes/{task}/resnet-test.zarr" for task in ("digits", "shapes-count")]
KEPT += ["results/probes/models/resnet-test.parquet"]


def _start(workdir: Path, *args: str) -> subprocess.Popen:
    """The workflow in its own process group, so one signal reaches Snakemake and every job it started."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2"]
    log = open(workdir / "killed-run.log", "a")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([*cmd, *args, *TARGETS], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the workflow finished before the moment to kill it"
        assert time.monotonic() < deadline, "timed out waiting for the moment to kill"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _unfinished_outputs(workdir: Path) -> set[str]:
    """Outputs of the jobs Snakemake had started but not seen finish (its `.snakemake/incomplete` markers,
    file names = urlsafe base64 of the output path): a job killed just after writing its file is one."""
    markers = workdir / ".snakemake" / "incomplete"
    outputs = set()
    for marker in markers.rglob("*"):
        if marker.is_file() and marker.name != "migration_underway":
            encoded = "".join(part.lstrip("@") for part in marker.relative_to(markers).parts)
            outputs.add(base64.urlsafe_b64decode(encoded).decode())
    return outputs


def _finished_outputs(workdir: Path) -> dict[str, int]:
    """Modification time of every file of a finished output: not a partial store, not the output of a job
    Snakemake had not seen finish."""
    unfinished = _unfinished_outputs(workdir)
    files = {}
    for folder in ("data", "results"):
        for p in (workdir / folder).rglob("*"):
            path = str(p.relative_to(workdir))
            if p.is_file() and ".partial" not in path and not any(path.startswith(o) for o in unfinished):
                files[path] = p.stat().st_mtime_ns
    return files


def _resume(workdir: Path) -> int:
    """Rerun as a user would after a crash (stale lock removed, incomplete outputs redone); returns how
    many jobs the resumed run executed."""
    snakemake(workdir, "--unlock")
    out = snakemake(workdir, "--rerun-incomplete", *TARGETS)
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", out.stdout + out.stderr)
    assert done, out.stderr[-2000:]
    return int(done[-1][1])


def _check_resumed(workdir: Path, before: dict[str, int], reference: Path) -> None:
    after = _finished_outputs(workdir)
    recomputed = [path for path, mtime in before.items() if after.get(path) != mtime]
    assert recomputed == [], recomputed
    assert not list((workdir / "results").rglob("*.partial"))
    assert snakemake(workdir, "--dry-run", *TARGETS).stdout.count("Nothing to be done") == 1
    for path in KEPT:
        assert digests(workdir / path) == digests(reference / path), path


def test_killed_twice_resumes_and_regenerates_the_reference(tmp_path, tiny_run):
    write_config(tmp_path, tiny_config())
    # First kill: while an embedding store is being written.
    proc = _start(tmp_path)
    features = tmp_path / "results" / "features"
    _kill_when(proc, lambda: any(features.rglob("*.zarr.partial/zarr.json")))
    partial = [p.parent for p in features.rglob("*.zarr.partial/zarr.json")]
    assert partial
    for store in partial:  # a partial store never sits at the final path
        assert not store.with_name(store.name.removesuffix(".partial")).exists()
    first = _finished_outputs(tmp_path)
    # Second kill: the resumed run, once the first model pair is written.
    snakemake(tmp_path, "--unlock")
    proc = _start(tmp_path, "--rerun-incomplete")
    pairs = tmp_path / "results" / "alignment" / "tiny" / "pairs"
    _kill_when(proc, lambda: len(list(pairs.rglob("*.nc"))) >= 1)
    n_pairs_done = len(list(pairs.rglob("*.nc")))
    assert n_pairs_done < 6 and not (tmp_path / "results/alignment/tiny/alignment.nc").exists()
    second = _finished_outputs(tmp_path)
    assert {path: second.get(path) for path in first} == first  # nothing finished before the first kill redone
    # the jobs killed mid-way included
    planned = snakemake(tmp_path, "--dry-run", "--rerun-incomplete", *TARGETS).stdout
    total = len([line for line in planned.splitlines() if line.startswith("rule ")])
    executed = _resume(tmp_path)
    print(f"killed twice: {len(first)} then {len(second)} finished files kept, {n_pairs_done} of 6 pairs; ")
    print(f"the last resumed run executed {executed} of {total} planned jobs")
    assert 0 < executed <= total
    _check_resumed(tmp_path, second, tiny_run)


WORKFLOW_FILES = ("Snakefile", "rules", "scripts", "prh", "schemas", "envs", "report", "profiles")


def _in_place(project: Path, *args: str) -> subprocess.CompletedProcess:
    """Snakemake run in ``project`` from the project's own Snakefile, as `make pipeline` runs it."""
    cmd = [sys.executable, "-m", "snakemake", "-s", "Snakefile", "--cores", "2", *args]
    return subprocess.run(cmd, cwd=project, capture_output=True, text=True)


def test_a_moved_project_plans_nothing(tmp_path):
    """A project (code, config, results and its .snakemake folder together) moved or copied elsewhere plans no
    job: the rules' code inputs are relative to the working directory, not absolute paths."""
    import shutil

    first = tmp_path / "first"
    first.mkdir()
    for name in WORKFLOW_FILES:
        source = REPO / name
        copy = shutil.copytree if source.is_dir() else shutil.copy2
        copy(source, first / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if source.is_dir() else {}))
    config = tiny_config()
    config["models"] = [m for m in config["models"] if m["name"] == "resnet-test"]
    config["probes"]["tasks"] = config["probes"]["tasks"][:1]
    write_config(first, config)
    target = "results/states/tiny/resnet-test.zarr"
    made = _in_place(first, target)
    assert made.returncode == 0, made.stderr[-4000:]
    second = tmp_path / "elsewhere" / "second"
    shutil.copytree(first, second, symlinks=True)  # `cp -a`: modification times kept
    shutil.rmtree(first)  # and the old place gone, as after `mv`
    dry = _in_place(second, "--dry-run", target)
    assert dry.returncode == 0, dry.stderr[-4000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr, (dry.stdout + dry.stderr)[-3000:]
