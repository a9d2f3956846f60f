"""The competence ladder trained inside the workflow (``.test/ladder.yaml``): a ladder that climbs, bitwise
reproducible training, exact rerun plans for a new rung, the world Z, trends, and clear errors."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import xarray as xr
from conftest import digests, ladder_config, planned_jobs, snakemake, write_config

from prh.analysis.trends import trend_row
from prh.config import ConfigError, load_schema, validate_config
from prh.io.features import store_attrs

CNN = ["cnn-w8-all-s0-step0", "cnn-w8-all-s0-step80"]
GPT = ["gpt-w32-s0-step0", "gpt-w32-s0-step20", "gpt-w32-s0-step80"]
NARROW = "gpt-w16-s0-step80"  # family gpt-width: half the width, the same token budget
ENCODER = "enc-w32-s0-step200"  # family caption-encoder: the positive control, regressing Z


BOOKKEEPING = {("resolved_config", "results/config.yaml"), ("job_costs", "results/job_costs.parquet"), ("all", "")}


def plan_with(ladder_run, change) -> list[tuple[str, str]]:
    """The jobs a dry run plans after ``change`` (a function of the config) to the finished ladder run."""
    config = ladder_config()
    change(config)
    write_config(ladder_run, config)
    try:
        return planned_jobs(ladder_run)
    finally:
        write_config(ladder_run, ladder_config())


def test_the_ladder_climbs(ladder_run):
    """Over a family's checkpoints, bits-per-byte on held-out captions falls and probe accuracy rises."""
    scores = pl.read_parquet(ladder_run / "results/lm_scores.parquet").filter(pl.col("corpus") == "shapes")
    bpb = [scores.filter(pl.col("model") == m)["bits_per_byte"].item() for m in GPT]
    assert bpb[0] > bpb[1] > bpb[2]
    # the random init predicts nearly uniformly: log2(vocabulary) bits per token
    first = scores.filter(pl.col("model") == GPT[0]).row(0, named=True)
    uniform = np.log2(len(_vocab(ladder_run))) * first["tokens"] / first["bytes"]
    assert bpb[0] == pytest.approx(uniform, rel=0.05)
    accuracy = pl.read_parquet(ladder_run / "results/probes/accuracy.parquet")
    mean = [accuracy.filter(pl.col("model") == m)["test_accuracy"].mean() for m in CNN]
    assert mean[1] > mean[0]
    curves = pl.read_parquet(ladder_run / "results/training/gpt-w32-s0.parquet").filter(pl.col("split") == "validation")
    assert curves.sort("step")["value"].to_list() == sorted(curves["value"].to_list(), reverse=True)


def _vocab(run):
    import json

    return json.loads((run / "results/checkpoints/gpt-w32-s0/step-0/tokenizer.json").read_text())["model"]["vocab"]


def test_rungs_load_like_any_model(ladder_run):
    """A checkpoint is an ordinary timm / transformers folder, read by the ordinary loaders; its provenance
    names the run, the step and the weights."""
    vision = store_attrs(ladder_run / f"results/features/tiny/{CNN[1]}.zarr")
    assert vision["model_source"] == "timm" and vision["layer_names"] == '["layer1", "layer2", "layer3", "layer4"]'
    assert vision["model_revision"].startswith("trained in the workflow: run cnn-w8-all-s0, step 80, weights sha256:")
    language = store_attrs(ladder_run / f"results/features/tiny/{GPT[2]}.zarr")
    assert language["model_source"] == "huggingface" and '"layers.1"' in language["layer_names"]


def test_two_from_scratch_runs_give_identical_checkpoints_and_features(ladder_run, tmp_path):
    """A second run from scratch: checkpoints, features, bits-per-byte, probes, the aggregate alignment and
    the downstream scores all byte for byte the first run's."""
    write_config(tmp_path, ladder_config())
    targets = [f"results/features/tiny/{m}.zarr" for m in CNN + GPT]
    targets += ["results/lm_scores.parquet", "results/probes/competence.parquet", "results/alignment/tiny/alignment.nc"]
    targets += [f"results/downstream/shapes-anchor/{m}.parquet" for m in GPT]
    snakemake(tmp_path, *targets)
    for path in ["results/checkpoints", "data/training", "results/probes/models", *targets]:
        assert digests(tmp_path / path) == digests(ladder_run / path), path


def test_the_world_is_aligned_to(ladder_run):
    """Z is one more model of the dataset: every rung has a pair with it; Z against itself is 1."""
    import xarray as xr

    from prh.metrics import mutual_knn
    from prh.models.world import BLOCKS, encode_scene

    ds = xr.open_dataset(ladder_run / "results/alignment/tiny/alignment.nc", engine="scipy").load()
    assert "world" in ds["model_x"].values and str(ds["modality_x"].sel(model_x="world").values) == "world"
    assert np.isfinite(ds["best"].sel(metric="mutual_knn", model_y="world").drop_sel(model_x="world").values).all()
    from prh.data.shapes import sample_scene
    from prh.io.features import read_layers

    z = read_layers(ladder_run / "results/features/tiny/world.zarr")[0]
    assert z.shape == (64, sum(BLOCKS.values()))
    assert np.allclose(z[5], encode_scene(sample_scene(3, 5)), atol=1e-7)
    assert mutual_knn(z, z, k=5) == 1.0
    # Z is discrete: scenes tie at their 5th neighbour. The state job counts them, the aggregate keeps the
    # count and the best-alignment figure names it; the scores are expectations over tie orders.
    from prh.alignment.states import open_state
    from prh.metrics import LayerStates, prepare_stack
    from prh.plots.style import tie_note

    tied = int(LayerStates(prepare_stack([z], q=1.0)).tie_counts(5)[0])
    assert 0 < tied < 64
    assert open_state(ladder_run / "results/states/tiny/world.zarr")[1]["knn_ties"] == [tied]
    assert int(ds["knn_ties"].sel(model="world")) == tied
    assert f"world {tied} of 64" in tie_note(ds)


def test_trends_table_and_figures(ladder_run):
    trends = pl.read_parquet(ladder_run / "results/trends/tiny.parquet")
    # size_vision needs two trained vision models with a parameter count; the ladder has one trained CNN here
    assert set(trends["trend"]) == {"fig2", "fig3", "world_vision", "world_language", "size_language"}
    size = trend_row(trends, "size_language", "mutual_knn")
    stores = {m: store_attrs(ladder_run / f"results/features/tiny/{m}.zarr") for m in size["models"]}
    assert size["x_values"] == pytest.approx([np.log10(int(stores[m]["model_parameters"])) for m in size["models"]])
    assert set(trends["score"]) == {"raw", "calibrated"}
    assert set(trends["metric"]) == set(ladder_config()["alignment"]["metrics"])
    fig3 = trend_row(trends, "fig3", "mutual_knn")
    # every language model is in the table, labelled; only the trained causal LMs are points of rho
    assert fig3["models"] == GPT + [NARROW, ENCODER]
    assert fig3["roles"] == ["random", "trend", "trend", "trend", "positive"]
    assert fig3["n"] == 3 and -1 <= fig3["rho"] <= 1 and 0 < fig3["p_value"] <= 1
    # the calibrated trend: the same statistic on the calibrated scores of the same pairs, to the trained CNN
    calibrated = trend_row(trends, "fig3", "mutual_knn", "calibrated")
    ds = xr.open_dataset(ladder_run / "results/alignment/tiny/alignment.nc", engine="scipy")
    language = fig3["models"]
    expected = ds["calibrated"].sel(metric="mutual_knn", model_x=language, model_y=CNN[1:]).values.mean(axis=1)
    np.testing.assert_allclose(calibrated["y_values"], expected)
    from scipy import stats

    trained = slice(1, 4)
    rho = stats.spearmanr(calibrated["x_values"][trained], expected[trained]).statistic
    assert calibrated["rho"] == pytest.approx(rho)
    assert fig3["rho"] == pytest.approx(stats.spearmanr(fig3["x_values"][trained], fig3["y_values"][trained]).statistic)
    figures = ("world_alignment.png", "family_cnn-steps.png", "family_gpt-steps.png", "family_gpt-width.png",
               "competence_alignment.png")  # fmt: skip
    for name in figures + ("trend_calibration.png",):
        assert (ladder_run / "results/figures/tiny" / name).stat().st_size > 10_000
    family = pl.read_parquet(ladder_run / "results/families/tiny/gpt-steps.parquet")
    assert family.filter(pl.col("measure") == "world")["level"].to_list() == ["0", "20", "80"]
    assert (ladder_run / "results/figures/training_curves.png").stat().st_size > 10_000


def test_fig3_has_a_language_ladder_with_controls_beside_it(ladder_run, monkeypatch):
    """Bits-per-byte on both corpora, Fig. 3's from the configured one; the caption encoder (no next-token
    head) is not scored; the controls table says whether it aligned; the figure joins points only within a
    family and draws the controls as reference lines."""
    from prh.plots import trends as plots

    scores = pl.read_parquet(ladder_run / "results/lm_scores.parquet")
    assert scores.filter(pl.col("model") == ENCODER)["applicable"].to_list() == [False, False]
    bpb = {(r["model"], r["corpus"]): r["bits_per_byte"] for r in scores.filter(pl.col("applicable")).to_dicts()}
    assert {corpus for _, corpus in bpb} == {"shapes", "pydoc"}
    for model in GPT[1:] + [NARROW]:  # trained on captions: Python's help topics are out of their domain
        assert bpb[model, "pydoc"] > 2 * bpb[model, "shapes"]
    trends = pl.read_parquet(ladder_run / "results/trends/tiny.parquet")
    fig3 = trend_row(trends, "fig3", "mutual_knn")
    x = dict(zip(fig3["models"], fig3["x_values"]))
    assert all(x[m] == pytest.approx(1 - bpb[m, "shapes"]) for m in GPT + [NARROW]) and np.isnan(x[ENCODER])

    ds = xr.open_dataset(ladder_run / "results/alignment/tiny/alignment.nc", engine="scipy").load()
    checks = pl.read_parquet(ladder_run / "results/trends/tiny_controls.parquet")
    check = checks.row(0, named=True)
    assert checks["model"].to_list() == [ENCODER] and check["random_controls"] == [GPT[0]]
    best = ds["best"].sel(metric="mutual_knn")
    assert check["to_world"] == float(best.sel(model_x=ENCODER, model_y="world"))
    assert check["random_to_world"] == float(best.sel(model_x=GPT[0], model_y="world"))
    assert check["aligned_to_world"] == (check["to_world"] > check["random_to_world"] and check["to_world_p"] <= 0.05)
    assert check["aligned_to_vision"] == (check["to_vision"] > check["random_to_vision"])
    assert check["aligned_to_world"] and check["aligned_to_vision"]  # a model taught Z from captions aligns

    drawn = []
    monkeypatch.setattr(plots, "save", lambda fig, path: drawn.append(fig))
    families = [("gpt-steps s0", GPT[1:]), ("gpt-width s0", [NARROW, GPT[2]])]
    plots.plot_alignment_versus_lm_score(ds, trends, "fig3.png", "mutual_knn", families, checks, "shapes")
    (fig,) = drawn
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert list(lines["gpt-width s0"].get_xdata()) == [x[NARROW], x[GPT[2]]]
    assert list(lines["gpt-steps s0"].get_xdata()) == [x[GPT[1]], x[GPT[2]]]
    y = dict(zip(fig3["models"], fig3["y_values"]))
    assert list(lines[f"random init: {GPT[0]}"].get_ydata()) == [y[GPT[0]]] * 2
    assert list(lines[f"positive control: {ENCODER}"].get_ydata()) == [y[ENCODER]] * 2
    assert all(x[GPT[0]] not in line.get_xdata() for line in lines.values())  # a control is no point
    footnote = "".join(t.get_text() for t in fig.texts).replace("\n", "").replace(" ", "")  # wrapped text
    said = f"positive control {ENCODER}: " + ("aligned" if check["aligned_to_world"] else "did NOT align")
    assert said.replace(" ", "") in footnote


def test_the_ladder_lines_join_one_family_and_seed():
    """What Fig. 3 may join: each family's trained language rungs of one seed, by width then step."""
    from prh.experiments.ladder.rungs import expand

    config = ladder_config()
    config["training"]["families"].append({"name": "gpt-seeds", "modality": "language", "widths": [16, 32],
                                           "steps": [0, 80], "seeds": [1, 0]})  # fmt: skip
    ladder = expand(validate_config(config, load_schema())["training"])
    assert ladder.lines("language") == [
        ("gpt-steps s0", ["gpt-w32-s0-step20", "gpt-w32-s0-step80"]),
        ("gpt-width s0", ["gpt-w16-s0-step80", "gpt-w32-s0-step80"]),
        ("gpt-seeds s1", ["gpt-w16-s1-step80", "gpt-w32-s1-step80"]),
        ("gpt-seeds s0", ["gpt-w16-s0-step80", "gpt-w32-s0-step80"]),
    ]
    assert ladder.lines("vision") == [("cnn-steps s0", ["cnn-w8-all-s0-step80"])]
    assert ladder.runs["enc-w32-s0"].schedule == "encoder" and ladder.rungs[ENCODER].control == "positive"
    assert ladder.rungs[GPT[0]].control == "random" and ladder.rungs[GPT[2]].control is None
    assert ladder.rungs[ENCODER].model_entry()["control"] == "positive"


def test_adding_a_rung_plans_only_its_jobs(ladder_run):
    """A new width: its training job, its two rungs' embeddings, states, probes and pairs, then the aggregates
    and figures. A new step at a saved checkpoint: no training job at all."""
    config = ladder_config()
    config["training"]["families"][0]["widths"] = [8, 4]
    write_config(ladder_run, config)
    try:
        jobs = planned_jobs(ladder_run)
        config = ladder_config()
        config["training"]["families"][0]["steps"] = [0, 20, 80]
        write_config(ladder_run, config)
        step_jobs = planned_jobs(ladder_run)
    finally:
        write_config(ladder_run, ladder_config())
    new = ["cnn-w4-all-s0-step0", "cnn-w4-all-s0-step80"]
    others = sorted(CNN + GPT + [NARROW, ENCODER, "world"])
    expected = {("train_vision", "results/checkpoints/cnn-w4-all-s0/step-0")}
    for m in new:
        expected |= {
            ("embed", f"results/features/tiny/{m}.zarr"),
            ("alignment_state", f"results/states/tiny/{m}.zarr"),
            ("embed_probe_tasks", f"results/features/probes/digits/{m}.zarr"),
            ("probe", f"results/probes/models/{m}.parquet"),
        }
        expected |= {("align_pair", "results/alignment/tiny/pairs/{}/{}.nc".format(*sorted((m, o)))) for o in others}
    expected.add(("align_pair", "results/alignment/tiny/pairs/{}/{}.nc".format(*new)))
    downstream = {
        ("aggregate_alignment", "results/alignment/tiny/alignment.nc"),
        ("competence", "results/probes/accuracy.parquet"),
        ("trends", "results/trends/tiny.parquet"),
        ("results_page", "results/results.md"),  # the results page reads the trends
        ("plot_trend_calibration", "results/figures/tiny/trend_calibration.png"),
        ("plot_alignment_summary", "results/figures/tiny/best_alignment.png"),
        ("plot_cross_modal_metrics", "results/figures/tiny/cross_modal_metrics.png"),
        ("plot_alignment_versus_lm_score", "results/figures/tiny/alignment_versus_lm_score.png"),
        ("plot_competence_alignment", "results/figures/tiny/competence_alignment.png"),
        ("plot_model_umap", "results/figures/tiny/model_umap.png"),
        ("plot_world_alignment", "results/figures/tiny/world_alignment.png"),
        ("plot_family", "results/families/tiny/cnn-steps.parquet"),
        ("plot_family", "results/families/tiny/gpt-steps.parquet"),
        ("plot_family", "results/families/tiny/gpt-width.parquet"),
        ("plot_family", "results/families/tiny/caption-encoder.parquet"),
        ("plot_training_curves", "results/figures/training_curves.png"),
        ("plot_downstream", "results/figures/downstream_shapes-anchor.png"),  # Fig. 4 reads the alignment
        ("plot_downstream", "results/figures/downstream_gsm8k.png"),
        # Fig. 9 scores every vision model at each level; Fig. 12 over k needs three vision models, now four
        ("density_alignment", "results/density/tiny/count/alignment.nc"),
        ("density_alignment", "results/density/tiny/background/alignment.nc"),
        ("density_alignment", "results/density/tiny/summary_5/alignment.nc"),
        ("density_alignment", "results/density/tiny/summary_20/alignment.nc"),
        ("plot_caption_density", "results/density/tiny/summary.parquet"),
        ("metric_variants", "results/alignment/tiny/metric_variants.nc"),
        ("plot_metric_variants", "results/figures/tiny/metric_variants.png"),
        ("resolved_config", "results/config.yaml"),
        ("job_costs", "results/job_costs.parquet"),
        ("all", ""),
    }
    assert sorted(jobs) == sorted(expected | downstream)
    # the saved step: the rung's own jobs and the same aggregates and figures, no training (nor its curves)
    rung = "cnn-w8-all-s0-step20"
    own = {
        ("embed", f"results/features/tiny/{rung}.zarr"),
        ("alignment_state", f"results/states/tiny/{rung}.zarr"),
        ("embed_probe_tasks", f"results/features/probes/digits/{rung}.zarr"),
        ("probe", f"results/probes/models/{rung}.parquet"),
    }
    own |= {("align_pair", "results/alignment/tiny/pairs/{}/{}.nc".format(*sorted((rung, o)))) for o in others}
    assert sorted(step_jobs) == sorted(
        own | downstream - {("plot_training_curves", "results/figures/training_curves.png")}
    )


def test_switching_fig3s_corpus_scores_nothing_again(ladder_run):
    """Both corpora are scored: choosing the other for Fig. 3 reruns the trends and the figures that read the
    scores, and no language model."""
    jobs = plan_with(ladder_run, lambda c: c["lm_score"].update(corpus="pydoc"))
    expected = {
        ("trends", "results/trends/tiny.parquet"),
        ("results_page", "results/results.md"),  # the results page reads the trends
        ("plot_trend_calibration", "results/figures/tiny/trend_calibration.png"),
        ("plot_alignment_versus_lm_score", "results/figures/tiny/alignment_versus_lm_score.png"),
        ("plot_competence_alignment", "results/figures/tiny/competence_alignment.png"),
        ("plot_world_alignment", "results/figures/tiny/world_alignment.png"),
        ("plot_downstream", "results/figures/downstream_shapes-anchor.png"),
        ("plot_downstream", "results/figures/downstream_gsm8k.png"),
    }
    assert sorted(jobs) == sorted(expected | BOOKKEEPING)


EXPERIMENT_JOBS = {  # what editing an experiment's module replans in the finished ladder run: its jobs alone
    "experiments/downstream/tasks.py": (
        "", {"downstream_task": 1, "downstream_score": 5, "published_scores": 1, "plot_downstream": 2}),
    "experiments/colour/analysis.py": (
        "results/texts/colours/",
        {"colour_sentences": 1, "colour_cooccurrence": 1, "embed_texts": 3, "colour_analysis": 1, "plot_colours": 1}),
    "experiments/density/levels.py": (
        "results/texts/density/",
        {"density_captions": 4, "density_summaries": 2, "embed_texts": 12, "density_alignment": 4,
         "plot_caption_density": 1}),
    # an experiment's figures: its figure jobs alone
    "experiments/downstream/figures.py": ("", {"plot_downstream": 2}),
    "experiments/colour/figures.py": ("", {"plot_colours": 1}),
    "experiments/density/figures.py": ("", {"plot_caption_density": 1}),
    "experiments/density/alignment.py": ("", {"density_alignment": 4, "plot_caption_density": 1}),
}  # fmt: skip

MODEL_RULES = {"train_vision", "train_language", "train_encoder", "embed", "embed_texts", "embed_probe_tasks",
               "density_captions", "density_summaries"}  # fmt: skip


def _plan_after_editing(ladder_run, tmp_path, module: str) -> list[tuple[str, str]]:
    """(rule, first output) of the jobs the finished run plans after a comment is added to ``prh/{module}`` in a
    scratch copy of the repository (the mtime trigger only: the copy's inputs have other paths)."""
    import os
    import re
    import shutil
    import subprocess
    import sys
    import time

    from conftest import REPO

    repo, workdir = tmp_path / "repo", tmp_path / "run"
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True).stdout.split()
    for name in tracked:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, repo / name, follow_symlinks=False)  # mtimes kept: the run is up to date
    shutil.copytree(ladder_run, workdir, symlinks=True)
    edited = repo / "prh" / module
    edited.write_text(edited.read_text() + "\n# edited\n")
    later = time.time() + 60
    os.utime(edited, (later, later))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d", str(workdir), "-n", "--cores", "1"]
    out = subprocess.run(cmd + ["--rerun-triggers", "mtime"], capture_output=True, text=True, check=True).stdout
    return re.findall(r"^(?:local)?rule (\w+):\n(?:.*\n)*?\s+output: ([^,\n]+)", out, re.M)


@pytest.mark.parametrize("module", list(EXPERIMENT_JOBS))
def test_editing_an_experiments_module_replans_only_its_jobs(ladder_run, tmp_path, module):
    """A comment added to Fig. 4's, Fig. 8's or Fig. 9's module (or to its figures): the finished run plans that
    experiment's jobs (its figure jobs) and the job-cost table, nothing else (no training, no embedding of the
    dataset, no pair)."""
    from collections import Counter

    jobs = _plan_after_editing(ladder_run, tmp_path, module)
    texts, expected = EXPERIMENT_JOBS[module]
    assert Counter(rule for rule, _ in jobs) == Counter(expected | {"job_costs": 1})
    assert all(output.startswith(texts) for rule, output in jobs if rule == "embed_texts")


@pytest.mark.parametrize("module", ["metrics/kernels.py", "metrics/layerwise.py"])
def test_editing_the_metrics_replans_the_alignment_and_no_model_or_caption(ladder_run, tmp_path, module):
    """The metrics' kernels are the states', the pairs' and the density levels' alignment code: an edit plans
    those, and no training, no embedding (of the dataset, the probe tasks or the caption levels) and no
    density caption or summary, whose modules do not import the metrics."""
    from collections import Counter

    counts = Counter(rule for rule, _ in _plan_after_editing(ladder_run, tmp_path, module))
    assert not MODEL_RULES & set(counts), counts
    models = len(CNN + GPT) + 3  # every rung, the narrow GPT, the encoder and the world
    assert counts["alignment_state"] == models and counts["align_pair"] == models * (models - 1) // 2
    assert counts["density_alignment"] == 4


@pytest.mark.parametrize("module", ["analysis/lm_score.py", "experiments/ladder/language.py"])
def test_the_language_side_of_the_ladder_never_retrains_its_cnns(ladder_run, tmp_path, module):
    """Bits-per-byte and the language trainers are the language rungs' code: an edit retrains the GPTs (their
    checkpoints are scored in training), never a CNN, and embeds no vision model again."""
    jobs = _plan_after_editing(ladder_run, tmp_path, module)
    rules = {rule for rule, _ in jobs}
    assert "train_language" in rules and "train_vision" not in rules
    assert not [output for rule, output in jobs if rule in ("embed", "probe") and "/cnn-" in output]


def test_adding_a_downstream_task_plans_only_its_jobs(ladder_run, tmp_path):
    """A second task: its items, each GPT rung's score on it, its Fig. 4; nothing else but the run's
    bookkeeping. The idealised world and Fig. 4 of the first task are in the run."""
    assert (ladder_run / "results/figures/idealised_world.png").stat().st_size > 10_000
    scores = [pl.read_parquet(ladder_run / f"results/downstream/shapes-anchor/{m}.parquet") for m in GPT]
    assert all(s["applicable"][0] and s["items"][0] == 8 for s in scores)
    more = {"kind": "shapes", "size": 4, "seed": 1}
    jobs = plan_with(ladder_run, lambda c: c["downstream"]["tasks"].update(more=more))
    expected = {("downstream_task", "data/downstream/more.parquet"),
                ("plot_downstream", "results/figures/downstream_more.png")}  # fmt: skip
    expected |= {("downstream_score", f"results/downstream/more/{m}.parquet") for m in GPT + [NARROW, ENCODER]}
    assert sorted(jobs) == sorted(expected | BOOKKEEPING)


def test_published_scores_are_read_for_each_model_and_a_new_table_plans_one_job(ladder_run, tmp_path):
    """GSM8K's way in: the run read ``.test/published.csv`` (no model is run for it); a rung the table lacks is
    not applicable, the others carry their number and citation, sized by the features store's parameters. A
    second table plans one job and its Fig. 4."""
    from prh.io.features import store_attrs

    path = ladder_run / "results/published/gsm8k.parquet"
    scores = {r["model"]: r for r in pl.read_parquet(path).to_dicts()}
    assert not scores[GPT[0]]["applicable"] and scores[GPT[0]]["accuracy"] is None
    assert [scores[m]["accuracy"] for m in GPT[1:]] == [0.125, 0.5]
    assert scores[GPT[2]]["source"] == "test fixture (no publication)"
    attrs = store_attrs(ladder_run / f"results/features/tiny/{GPT[2]}.zarr")
    assert scores[GPT[2]]["parameters"] == attrs["model_parameters"]
    assert (ladder_run / "results/figures/downstream_gsm8k.png").stat().st_size > 10_000
    snakemake(ladder_run, "--report", str(tmp_path / "report.html"))  # each task kind has its own caption
    html = (tmp_path / "report.html").read_text(errors="ignore")
    assert "against its published accuracy" in html and "cuts each caption before its second mention" in html
    table = tmp_path / "more.csv"
    table.write_text(f"model_id,accuracy,setting,source,url\n{GPT[0]},0.25,0-shot,X (2026),https://x.org\n")
    more = {"kind": "published", "table": str(table)}
    jobs = plan_with(ladder_run, lambda c: c["downstream"]["tasks"].update(more=more))
    expected = {("published_scores", "results/published/more.parquet"),
                ("plot_downstream", "results/figures/downstream_more.png")}  # fmt: skip
    assert sorted(jobs) == sorted(expected | BOOKKEEPING)


def test_a_density_level_plans_only_its_jobs_and_no_vision_embedding(ladder_run):
    """Fig. 9 is in the run, two levels of them summaries; a new level: its captions, each GPT rung's
    embedding of them, the level's alignment and the figure, and no vision model embeds anything (the CNN's
    features are reused), nor is anything summarised again."""
    summary = pl.read_parquet(ladder_run / "results/density/tiny/summary.parquet")
    assert summary["level"].to_list() == ["count", "background", "summary_5", "summary_20"]
    assert summary["language_models"][0] == len(GPT)
    assert summary["words"][0] == 2 and summary["words"][1] > 10  # "Three objects." against the full caption
    assert (ladder_run / "results/figures/tiny/caption_density.png").stat().st_size > 10_000
    levels = ["count", "colours", "background", "summary_5", "summary_20"]
    jobs = plan_with(ladder_run, lambda c: c["density"].update(levels=levels))
    expected = {("density_captions", "data/texts/density/tiny/colours/samples.parquet"),
                ("density_alignment", "results/density/tiny/colours/alignment.nc"),
                ("plot_caption_density", "results/density/tiny/summary.parquet")}  # fmt: skip
    expected |= {("embed_texts", f"results/texts/density/tiny/colours/{m}.zarr") for m in GPT}
    assert sorted(jobs) == sorted(expected | BOOKKEEPING)


def test_a_colour_set_plans_only_its_jobs(ladder_run):
    """Fig. 8 is in the run, with CIELAB against itself at the smallest p-value; a second set: its sentences,
    each GPT rung's embedding of them, its analysis and figure; the pixel co-occurrence is reused."""
    scores = pl.read_parquet(ladder_run / "results/colours/basic/scores.parquet")
    assert scores["representation"].to_list() == ["CIELAB", "vision: pixel PMI"] + [f"language: {m}" for m in GPT]
    assert scores["rsa"][0] == pytest.approx(1) and scores["rsa_p"][0] == pytest.approx(1 / 20)
    assert (ladder_run / "results/figures/colours_basic.png").stat().st_size > 10_000
    jobs = plan_with(ladder_run, lambda c: c["colour"]["sets"].update(warm=["red", "orange", "yellow", "brown"]))
    expected = {("colour_sentences", "data/texts/colours/warm/samples.parquet"),
                ("colour_analysis", "results/colours/warm/scores.parquet"),
                ("plot_colours", "results/figures/colours_warm.png")}  # fmt: skip
    expected |= {("embed_texts", f"results/texts/colours/warm/{m}.zarr") for m in GPT}
    assert sorted(jobs) == sorted(expected | BOOKKEEPING)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda t: t.update(task_sets={"odd": ["count", "smell"]}),
            "training.task_sets.odd: unknown attribute(s) smell",
        ),
        (
            lambda t: t["families"][0].update(widths=[8, 0]),
            "training.families[0].widths[1]: 0 is less than the minimum of 1",
        ),
        (lambda t: t["vision"].update(steps=0), "training.vision.steps: 0 is less than the minimum of 1"),
        (
            lambda t: t["families"][1].update(steps=[0, 50]),
            "training.families[1] (family 'gpt-steps').steps: [50] are not saved",
        ),
        (lambda t: t["families"][0].update(tasks=["nope"]), "'nope' is not a task set"),
        (lambda t: t["families"][1].update(tasks=["all"]), "(family 'gpt-steps').tasks: task sets apply to vision"),
        (
            lambda t: t["families"][0].update(objective="world"),
            "(family 'cnn-steps').objective: applies to language families only",
        ),
        (
            lambda t: t["families"][3].update(objective="masked"),
            "training.families[3].objective: 'masked' is not one of ['next-token', 'world']",
        ),
        (
            lambda t: t["families"][3].update(steps=[80]),
            "(family 'caption-encoder').steps: [80] are not saved (training.encoder.checkpoints is [200])",
        ),
        (
            lambda t: t.update(_svcca=True),
            "(family 'cnn-steps').widths: [8] give layers narrower than alignment.metrics.svcca.dims = 10",
        ),
    ],
)
def test_bad_ladders_are_named(mutate, message):
    config = ladder_config()
    mutate(config["training"])
    if config["training"].pop("_svcca", False):
        config["alignment"]["metrics"]["svcca"] = {"dims": 10}
    with pytest.raises(ConfigError, match=None) as error:
        validate_config(config, load_schema())
    assert message in str(error.value)


def test_a_bad_ladder_stops_before_any_job(tmp_path):
    config = ladder_config()
    config["training"]["task_sets"] = {"all": ["count", "smell"]}
    write_config(tmp_path, config)
    result = snakemake(tmp_path, check=False)
    assert result.returncode != 0 and "unknown attribute(s) smell" in result.stderr + result.stdout
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()


def test_a_diverging_run_fails_its_job_naming_step_and_loss(ladder_run, tmp_path):
    """An lr that blows the weights up: the loss turns NaN, the training job fails naming the run, the step
    and the loss, and every output that job does not make is left as it was."""
    import shutil

    workdir = tmp_path / "run"
    shutil.copytree(ladder_run, workdir, symlinks=True)
    before = digests(workdir / "results/features")
    config = ladder_config()
    config["training"]["language"]["lr"] = 1e30
    write_config(workdir, config)
    result = snakemake(workdir, "--keep-going", check=False)
    assert result.returncode != 0
    log = (workdir / "logs/train/gpt-w32-s0.log").read_text()
    assert "training run 'gpt-w32-s0': the loss is nan at step" in log
    after = digests(workdir / "results/features")
    assert {k: v for k, v in after.items() if "gpt" not in k} == {k: v for k, v in before.items() if "gpt" not in k}
    assert (workdir / "results/checkpoints/cnn-w8-all-s0/step-80").is_dir()


def test_fig2_and_fig3_text_never_overlaps_and_the_p_value_floor_is_said(ladder_run, monkeypatch):
    """Fig. 2 and Fig. 3 drawn from the ladder run's tables: no two of their titles, axis labels and suptitle
    intersect when drawn; with K = 29 every p-value of this run sits at 1/30, and the figure says so."""
    import xarray as xr

    from prh.analysis.probes import binned_alignment
    from prh.analysis.trends import vision_alignment
    from prh.plots import probes as probes_plots
    from prh.plots import trends as trends_plots
    from prh.plots.style import p_floor_note, text_overlaps

    drawn = []
    for module in (trends_plots, probes_plots):  # Fig. 3's module and Fig. 2's
        monkeypatch.setattr(module, "save", lambda fig, path: drawn.append((fig, text_overlaps(fig))))
    ds = xr.open_dataset(ladder_run / "results/alignment/tiny/alignment.nc", engine="scipy").load()
    trends = pl.read_parquet(ladder_run / "results/trends/tiny.parquet")
    checks = pl.read_parquet(ladder_run / "results/trends/tiny_controls.parquet")
    competence = pl.read_parquet(ladder_run / "results/probes/competence.parquet")
    families = [("gpt-steps s0", GPT[1:]), ("gpt-width s0", [NARROW, GPT[2]])]
    trends_plots.plot_alignment_versus_lm_score(ds, trends, "fig3.png", "mutual_knn", families, checks, "shapes")
    vision = [m for m, v in zip(ds["model_x"].values, ds["modality_x"].values) if v == "vision"]
    binned = {}
    for score in ("raw", "calibrated"):
        _, alignment, values = vision_alignment(ds, competence, "mutual_knn", vision, "last", score)
        binned[score] = binned_alignment(alignment, values, 2)
    probes_plots.plot_competence_alignment(binned, "fig2.png", "mutual_knn", 2, trends, "last")
    assert len(drawn) == 2 and all(len(fig.axes) == 2 for fig, _ in drawn)
    assert [overlaps for _, overlaps in drawn] == [[], []]
    p = ds["p_value"].values[np.isfinite(ds["p_value"].values)]
    floor = 1 / (ds.attrs["permutations"] + 1)
    note = p_floor_note(ds)
    assert (note != "") == bool(np.allclose(p, floor)) and (f"{floor:.3f}" in note or not note)
    assert p_floor_note(ds.assign(p_value=ds["p_value"] * 2)) == ""  # off the floor: nothing said
    footnotes = [t.get_text() for t in drawn[0][0].texts]
    assert any("cannot tell the pairs apart" in t for t in footnotes) == bool(note)


def test_a_lost_checkpoint_is_made_again(ladder_run, tmp_path):
    """A checkpoint deleted from a finished run: the dry run plans its training job and exactly what rerunning
    that job implies (the jobs ``--forcerun`` of that run's curves plans on the intact run), not nothing."""
    import shutil

    workdir = tmp_path / "run"
    shutil.copytree(ladder_run, workdir, symlinks=True)
    rerun = sorted(planned_jobs(workdir, "--forcerun", "results/training/cnn-w8-all-s0.parquet"))
    assert ("train_vision", "results/checkpoints/cnn-w8-all-s0/step-0") in rerun
    shutil.rmtree(workdir / "results/checkpoints/cnn-w8-all-s0/step-20")  # a step no rung reads
    assert sorted(planned_jobs(workdir)) == rerun


def test_summary_levels_are_written_by_the_instruct_model(ladder_run):
    """App. E offline: SmolLM2-135M-Instruct's summaries of each scene's positions description, one file per
    level, each level's captions those summaries, with the word-count check and the prompt recorded."""
    import json

    for level, n in (("summary_5", 5), ("summary_20", 20)):
        path = ladder_run / f"data/texts/density/tiny/{level}/summaries/smollm2-instruct.parquet"
        table = pl.read_parquet(path)
        record = json.loads(pl.read_parquet_metadata(path)["prh_provenance"])["summaries"]
        captions = pl.read_parquet(ladder_run / f"data/texts/density/tiny/{level}/samples.parquet")
        assert captions["caption"].to_list() == table["summary"].to_list() and len(table) == 16  # density.size
        assert record["words"] == n and record["decoding"] == "greedy" and f"about {n} words" in record["prompt"]
        assert record["check"]["mean_words"] == pytest.approx(table["words"].mean())
        assert all(" is " in d or " are " in d for d in table["dense"])  # the positions level: where each group is


_TRAIN_BOTH = """
import hashlib, json, sys, tempfile
from pathlib import Path
import numpy as np
from prh.data.shapes import caption_scene, render_scene, sample_scene
from prh.experiments.ladder.language import train_language
from prh.experiments.ladder.vision import train_vision
scenes = [sample_scene(0, i) for i in range(96)]
out = Path(tempfile.mkdtemp())
train_vision(np.stack([render_scene(s) for s in scenes]), scenes, run="v", arch="resnet18", width=16,
             depth=[1, 1, 1, 1], attributes=["count", "shape", "colour"], input_size=64, steps=10, checkpoints=[10],
             out_dirs=[out / "v"], validation=16, batch_size=16, lr=0.002, seed=0, threads=1)
texts = [caption_scene(sample_scene(0, i)) for i in range(300)]
train_language(texts, run="g", width=64, layers=2, context=64, vocab_size=300, steps=20, checkpoints=[20],
               out_dirs=[out / "g"], validation=32, batch_size=16, lr=0.003, seed=0, threads=1)
weights = sorted(out.rglob("*.safetensors"))
digests = {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in weights}
kernels = json.loads((out / "v" / "training.json").read_text())["kernels"]
print(json.dumps({"digests": digests, "kernels": kernels}))
"""


def test_training_gives_the_same_weights_under_every_instruction_set():
    """One vision and one language rung trained in two processes, one free to use the machine's widest
    kernels, one told to use AVX2's (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA: what an AVX2-only CPU runs): the
    same checkpoints byte for byte, and the kernel path they were held to in their provenance. (On this
    AVX-512 machine the two gave different weights, both rungs, before training fixed its kernels.)"""
    import json
    import os
    import subprocess
    import sys

    results = []
    for capability, isa in ((None, None), ("avx2", "AVX2")):  # the machine's widest kernels, then AVX2's
        env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")}
        env |= {"ATEN_CPU_CAPABILITY": capability, "ONEDNN_MAX_CPU_ISA": isa} if capability else {}
        done = subprocess.run([sys.executable, "-c", _TRAIN_BOTH], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert len(results[0]["digests"]) == 2 and results[0]["digests"] == results[1]["digests"]
    assert results[0]["kernels"] == results[1]["kernels"] == {
        "cpu_capability": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"
    }  # fmt: skip


def test_the_results_page_is_written_from_the_runs_tables(ladder_run):
    """results/results.md of the ladder run: the commit and the machine it ran on, each trend once with its x and
    y and the ρ, p and interval its table holds (formatted here from the table, independently), the positive
    control's check; and the note where two trends share models, ρ and p."""
    import subprocess

    import polars as pl
    from conftest import REPO

    from prh.analysis.results_page import machine, results_page

    page = (ladder_run / "results" / "results.md").read_text()
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert f"commit `{commit.strip()[:12]}`" in page and machine() in page
    trends = pl.read_parquet(ladder_run / "results" / "trends" / "tiny.parquet")
    rows = trends.filter((pl.col("metric") == "mutual_knn") & (pl.col("score") == "raw")).to_dicts()
    assert {r["trend"] for r in rows} >= {"fig2", "fig3", "world_vision", "world_language"}
    stated = [r for r in rows if r["n"] >= 3]
    assert stated  # at least one trend has a ρ to state
    for row in rows:
        line = next(x for x in page.splitlines() if f"(`{row['trend']}`)" in x)
        assert f"| {row['x']} | {row['y']} | {row['n']} (" in line
        if row in stated:
            assert f"| {row['rho']:.2f} | {row['p_value']:.3g} | [{row['ci_low']:.2f}, {row['ci_high']:.2f}]" in line
    assert "## Families" in page and "**tiny/cnn-steps**" in page
    assert page.count("(`fig3`)") == 1 and "- positive control enc-" in page
    # Two trends over the same models whose ρ and p agree are said to share their ranks.
    same = trends.filter(pl.col("trend") == "fig3").with_columns(trend=pl.lit("world_language"), y=pl.lit("to Z"))
    both = pl.concat([trends.filter(pl.col("trend") == "fig3"), same])
    text = results_page({"tiny": (both, None)}, "mutual_knn", {"git_commit": "abc"})
    assert "Same models and ρ as `fig3`: another y, the same ranks." in text.splitlines()[-1]
