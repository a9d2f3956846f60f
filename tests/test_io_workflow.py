"""The workflow helpers of prh.io.workflow: a rule's settings read from the schema's sections by the parameter
names of the function its job calls, and its code inputs from the imports of its script."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from prh.config import validate_config
from prh.io.workflow import library_modules, settings_of

FUNCTION = """
def score(features, metrics, *, quantile=0.95, knn_method="exact", bootstrap_resamples=0, bootstrap_seed=0,
          seed=1, device="cpu", unknown=None):
    return features
"""


def test_settings_are_the_parameters_that_name_a_setting(tmp_path):
    """By hand: a parameter named like a key takes it, ``<section>_<key>`` takes a key of a subsection, the
    first section that has it wins, and a parameter no section names is left out."""
    (tmp_path / "m.py").write_text(FUNCTION)
    alignment = {"metrics": {"cka": {}}, "quantile": 0.9, "knn": {"method": "faiss", "block": 64},
                 "bootstrap": {"resamples": 30, "level": 0.95, "seed": 7}, "normalize": True}  # fmt: skip
    figures = {"seed": 3, "quantile": 0.5}
    settings = settings_of("m.py:score", figures, alignment, root=tmp_path)
    assert settings == {"metrics": {"cka": {}}, "quantile": 0.5, "knn_method": "faiss", "bootstrap_resamples": 30,
                        "bootstrap_seed": 7, "seed": 3}  # fmt: skip
    assert list(settings) == ["metrics", "quantile", "knn_method", "bootstrap_resamples", "bootstrap_seed", "seed"]


def test_the_pair_job_takes_every_setting_of_its_sections_and_the_state_job_not_the_interval_level():
    """What the default config's pair and state jobs are given: bootstrap.level is the pair's (the interval's
    coverage), never the state's, so changing it reruns no state."""
    config = validate_config(yaml.safe_load((REPO / "config.yaml").read_text()))
    alignment = config["alignment"]
    pair = settings_of("prh/alignment/pairs.py:pair_scores", alignment)
    null, boot = alignment["null_distribution"], alignment["bootstrap"]
    assert pair == {"metrics": alignment["metrics"]} | {f"null_distribution_{k}": v for k, v in null.items()} | {
        f"bootstrap_{k}": v for k, v in boot.items()
    } | {"device": alignment["device"]}
    state = settings_of("prh/alignment/states.py:compute_state", alignment)
    assert "bootstrap_level" not in state and state["bootstrap_resamples"] == boot["resamples"]
    assert state["knn_method"] == alignment["knn"]["method"] and state["knn_block"] == alignment["knn"]["block"]


def test_a_missing_function_is_named(tmp_path):
    (tmp_path / "m.py").write_text(FUNCTION)
    with pytest.raises(ValueError, match=r"settings_of\('m.py:nothing'\): m.py defines no function nothing"):
        settings_of("m.py:nothing", {}, root=tmp_path)


def test_library_modules_follow_imports_to_the_package_inits(tmp_path):
    """A script's library inputs: the modules it imports (function-level imports too), through the modules
    they import, with each package's ``__init__``; nothing outside the package."""
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    for name, text in {"pkg/__init__.py": "", "pkg/sub/__init__.py": "", "pkg/sub/a.py": "import json\n",
                       "pkg/b.py": "def f():\n    from pkg.sub import a\n", "pkg/c.py": ""}.items():  # fmt: skip
        (tmp_path / name).write_text(text)
    script = tmp_path / "script.py"
    script.write_text("import numpy\nfrom pkg.b import f\n")
    found = library_modules(script, tmp_path, package="pkg", start=tmp_path)
    assert found == sorted(str(Path(p)) for p in ("pkg/__init__.py", "pkg/b.py", "pkg/sub/__init__.py", "pkg/sub/a.py"))

    # Each file is parsed once per version (its mtime and size): a later edit of the same length is read again.
    b = tmp_path / "pkg/b.py"
    edited = b.stat().st_mtime_ns + 10**9
    b.write_text("def f():\n    from pkg     import c\n")
    os.utime(b, ns=(edited, edited))
    found = library_modules(script, tmp_path, package="pkg", start=tmp_path)
    assert found == ["pkg/__init__.py", "pkg/b.py", "pkg/c.py"]


ALLOCATE = """
import resource, sys
import numpy as np
from prh.io.workflow import logged
def churn():
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        block = np.ones(8 * 2**20)  # 64 MB, past glibc's largest mmap threshold (32 MB)
        del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start
if sys.argv[1] == "job":
    with logged(sys.argv[2]):
        churn()
        print(churn(), file=sys.__stdout__)
else:
    churn()
    print(churn())
"""


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="glibc's malloc: Linux")
def test_a_job_reuses_freed_memory_instead_of_faulting_it_in_again(tmp_path):
    """A 64 MB array allocated and freed 20 times: with glibc's defaults each one is a fresh mmap whose 16,384
    pages fault in again; inside a job's ``logged`` block the freed heap is reused and almost nothing faults."""
    import subprocess
    import sys

    def faults(*mode):
        done = subprocess.run([sys.executable, "-c", ALLOCATE, *mode], capture_output=True, text=True, check=True)
        return int(done.stdout)

    default, job = faults("plain"), faults("job", str(tmp_path / "job.log"))
    assert default > 20 * 16_384 / 512  # at least one fault per 2 MB huge page of every block
    assert job * 20 < default, (default, job)


def test_a_snakemake_job_ends_with_its_logged_block_and_a_library_call_does_not(tmp_path):
    """In a Snakemake job (``snakemake`` in ``__main__``) the process exits 0 when the block ends, its log
    whole (start-up and work lines); anywhere else the caller goes on after the block."""
    import subprocess
    import sys

    job = f"""
import snakemake.iocontainers as io
snakemake = object.__new__(io.Snakemake)
from prh.io.workflow import logged
with logged({str(tmp_path / "job.log")!r}) as log:
    log.info("inside")
print("after the block")
"""
    done = subprocess.run([sys.executable, "-c", job], capture_output=True, text=True)
    assert done.returncode == 0 and "after the block" not in done.stdout, done.stderr
    lines = (tmp_path / "job.log").read_text().splitlines()
    assert "start-up:" in lines[0] and "inside" in lines[1] and "work:" in lines[2]
    library = job.replace("snakemake = ", "not_a_job = ")
    done = subprocess.run([sys.executable, "-c", library], capture_output=True, text=True)
    assert done.returncode == 0 and "after the block" in done.stdout, done.stderr


def test_a_failing_snakemake_job_prints_its_error_once_in_its_log(tmp_path):
    """A job whose block raises exits 1 with the error written once, in its log, not printed again by Python
    (Snakemake names the log and shows it with --show-failed-logs); a library call gets the exception."""
    import subprocess
    import sys

    job = f"""
import snakemake.iocontainers as io
snakemake = object.__new__(io.Snakemake)
from prh.io.features import FeatureStoreError
from prh.io.workflow import logged
with logged({str(tmp_path / "job.log")!r}):
    raise FeatureStoreError("x.zarr: array 'features' cannot be read")
"""
    done = subprocess.run([sys.executable, "-c", job], capture_output=True, text=True)
    assert done.returncode == 1 and "cannot be read" not in done.stdout + done.stderr, done.stderr
    log = (tmp_path / "job.log").read_text()
    assert log.count("x.zarr: array 'features' cannot be read") == 1 and "work:" not in log
    library = job.replace("snakemake = ", "not_a_job = ")
    done = subprocess.run([sys.executable, "-c", library], capture_output=True, text=True)
    assert done.returncode == 1 and "FeatureStoreError: x.zarr" in done.stderr


WAKEUPS = """
{setup}
rule all:
    input: expand("out/{{i}}.txt", i=range(24))
rule one:
    output: "out/{{i}}.txt"
    shell: "sleep 0.5; touch {{output}}"
"""


@pytest.mark.parametrize("bounded", [False, True])
def test_the_scheduler_wakes_once_per_event_not_once_per_finished_job_each_second(tmp_path, bounded):
    """24 jobs of half a second on 2 cores. Snakemake's loop wakes for each job event and once a timespan (1 s),
    choosing jobs each time (``--verbose``: "Resources before job selection"); unbounded, each finished job adds
    a wake-up a second. With ``one_pending_wakeup`` (which rules/common.smk applies) the passes are at most the
    events plus the seconds; without it they grow with jobs x seconds (when a Snakemake release stops doing
    so, the unbounded case fails, and prh.io.scheduler can go)."""
    import subprocess
    import sys
    import time

    setup = "from prh.io.scheduler import one_pending_wakeup\none_pending_wakeup()" if bounded else ""
    (tmp_path / "Snakefile").write_text(WAKEUPS.format(setup=setup))
    start = time.monotonic()
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--verbose", "-d", str(tmp_path), "all"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    seconds = time.monotonic() - start
    assert done.returncode == 0, done.stderr[-3000:]
    passes = (done.stdout + done.stderr).count("Resources before job selection")
    events = 2 * 25  # each job's start and end
    assert (passes <= events + seconds) == bounded, (passes, seconds)
