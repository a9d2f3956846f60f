"""The presets: valid configs, and the paper preset plans the whole paper run without network."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml
from conftest import REPO, snakemake

from prh.config import validate_config

PAPER_VISION = 17  # ViT augreg in21k T/S/B/L, MAE B/L/H, DINOv2 S/B/L/g, CLIP laion2b B/L/H and their in12k fine-tunes


@pytest.mark.parametrize("preset", ["paper", "laptop"])
def test_presets_are_valid(preset):
    config = validate_config(yaml.safe_load((REPO / "configs" / f"{preset}.yaml").read_text()))
    assert config["datasets"][0]["kind"] == "wit" and config["alignment"]["metrics"]["mutual_knn"]["k"] == 10


@pytest.mark.parametrize("preset", ["laptop", "offline-full"])
def test_presets_over_the_default_config_plan(preset, tmp_path):
    """A preset extends config.yaml (snakemake merges them): the merged config is valid and plans a run."""
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    out = snakemake(tmp_path, "--configfile", str(REPO / "configs" / f"{preset}.yaml"), "--dry-run").stdout
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[1], re.M))
    assert int(counts["align_pair"]) > 0 and int(counts["embed"]) > 0


def test_paper_preset_plans_every_model_and_pair(tmp_path):
    config = yaml.safe_load((REPO / "configs" / "paper.yaml").read_text())
    vision = [m for m in config["models"] if m["modality"] == "vision"]
    language = [m for m in config["models"] if m["modality"] == "language"]
    assert len(vision) == PAPER_VISION and len(language) >= 12
    assert all(m["source"] == "timm" and m["pretrained"] for m in vision)
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    out = snakemake(tmp_path, "--configfile", str(REPO / "configs" / "paper.yaml"), "--dry-run").stdout
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[1], re.M))
    n, v = len(vision) + len(language), len(vision)
    # WIT-1024 and DCI: every model and pair; Places-365 (no captions): the vision models and their pairs only.
    assert int(counts["dataset"]) == 3
    assert int(counts["embed"]) == 2 * n + v and int(counts["embed_probe_tasks"]) == v
    assert int(counts["align_pair"]) == n * (n - 1) + v * (v - 1) // 2
    assert int(counts["aggregate_alignment"]) == 3 and int(counts["metric_variants"]) == 3
    assert int(counts["plot_alignment_versus_lm_score"]) == 2
    assert int(counts["lm_score"]) == len(language)
    # Fig. 4: HellaSwag scored by every language model; GSM8K read from its table of published scores
    assert int(counts["downstream_score"]) == len(language) and int(counts["published_scores"]) == 1
    assert int(counts["plot_downstream"]) == 2
    # Fig. 9: five DCI summary lengths, embedded by the language models only; Fig. 8: one colour set.
    levels = config["density"]["levels"]
    assert int(counts["density_captions"]) == int(counts["density_alignment"]) == len(levels) == 5
    assert int(counts["density_summaries"]) == 5 and int(counts["preflight"]) == 1  # App. E's summaries, made here
    assert int(counts["embed_texts"]) == (len(levels) + 1) * len(language)
    assert int(counts["colour_cooccurrence"]) == int(counts["colour_analysis"]) == 1
    # Competence: the 19 VTAB tasks, each embedded and probed by every vision model (one job per model each).
    tasks = config["probes"]["tasks"]
    assert len(tasks) == 19 and all(t["kind"] == "vtab" for t in tasks)
    assert int(counts["probe_task"]) == 19 and int(counts["probe"]) == v
    assert int(counts["competence"]) == 1 and int(counts["plot_model_umap"]) == 1
    assert int(counts["plot_layer_matrices"]) == 2 * len(vision) * len(language)
    assert int(counts["alignment_state"]) == 2 * n + v  # one per (dataset, model), shared by all its pairs


def _pins(lines):
    return sorted(line.strip().removeprefix("- ").strip() for line in lines if "==" in line and "#" not in line)


def test_conda_env_is_self_contained_and_equals_the_requirements():
    """envs/prh.yaml has its pins inline (Snakemake copies the file, so no relative paths) and they are
    exactly requirements.txt's; the post-deploy script installs exactly requirements-nodeps.txt."""
    env = yaml.safe_load((REPO / "envs" / "prh.yaml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert not [entry for entry in pip if entry.startswith("-") or "/" in entry or "file:" in entry]
    assert sorted(pip) == _pins((REPO / "requirements.txt").read_text().splitlines())
    post = (REPO / "envs" / "prh.post-deploy.sh").read_text().replace("\\\n", " ")
    installed = sorted(word for word in post.split() if "==" in word)
    assert installed == _pins((REPO / "requirements-nodeps.txt").read_text().splitlines())


def test_paper_preset_reads_the_authors_models_from_where_they_load():
    """The authors' model sets (their tasks.py): OLMo-1B and OLMo-7B, Llama 3 from the ungated NousResearch
    mirrors; the models that stay gated are the ones "Running the paper" (docs/paper.md) names."""
    config = yaml.safe_load((REPO / "configs" / "paper.yaml").read_text())
    ids = {m.get("id") for m in config["models"]}
    assert {"allenai/OLMo-1B-hf", "allenai/OLMo-7B-hf"} <= ids
    assert {"NousResearch/Meta-Llama-3-8B", "NousResearch/Meta-Llama-3-70B"} <= ids
    assert not any(i.startswith("meta-llama/") for i in ids if i)
    gated = {"google/gemma-2b", "google/gemma-7b", "mistralai/Mistral-7B-v0.1", "mistralai/Mixtral-8x7B-v0.1"}
    manual = (REPO / "docs" / "paper.md").read_text()
    assert gated <= ids and "Gemma 2B/7B, Mistral-7B and Mixtral-8x7B are gated" in manual
    assert all(m.get("params") for m in config["models"])  # every job is sized before download
