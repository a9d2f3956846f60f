"""The workflow end to end on a tiny config: outputs, values, and what a rerun plans to do."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from conftest import (
    REPO,
    places365_fixture,
    planned_jobs,
    snakemake,
    tiny_config,
    write_config,
)
from test_metrics_definitions import brute_cycle_knn, brute_mutual_knn

from prh.io.features import open_features

pytestmark = pytest.mark.workflow

LAYERS = {"vit-test": 6, "resnet-test": 4, "convnext-test": 4, "minilm": 7}
VISION = ["vit-test", "resnet-test", "convnext-test"]
CROSS_MODAL = [("convnext-test", "minilm"), ("minilm", "resnet-test"), ("minilm", "vit-test")]
VISION_PAIRS = [("convnext-test", "resnet-test"), ("convnext-test", "vit-test"), ("resnet-test", "vit-test")]
TASKS = ["digits", "shapes-count"]


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run


def _with_config(workdir, mutate):
    """Dry-run plan after ``mutate`` is applied to the config; the config is restored afterwards."""
    config = tiny_config()
    mutate(config)
    write_config(workdir, config)
    try:
        return sorted(planned_jobs(workdir))
    finally:
        write_config(workdir, tiny_config())


def test_feature_stores(run):
    record = json.loads((run / "data/tiny/dataset.json").read_text())
    for model, n_layers in LAYERS.items():
        ds = open_features(run / f"results/features/tiny/{model}.zarr")
        assert ds["features"].dims == ("layer", "sample", "dim")
        assert ds.sizes["layer"] == n_layers and ds.sizes["sample"] == 64
        assert ds["features"].encoding["chunks"][1] == 24  # chunked along samples
        assert ds.attrs["dataset_fingerprint"] == record["fingerprint"]
        assert ds.attrs["model_source"] in ("timm", "huggingface") and ds.attrs["model_parameters"] > 0
        assert json.loads(ds.attrs["versions"])["torch"] == "2.14.1"
        widths = ds["width"].values
        values = ds["features"].values
        for layer, width in enumerate(widths):  # padding beyond a layer's width is zero
            assert not values[layer, :, width:].any()
            assert np.isfinite(values[layer, :, :width]).all() and values[layer, :, :width].std() > 0
    assert json.loads(open_features(run / "results/features/tiny/minilm.zarr").attrs["layer_names"])[0] == "embeddings"


def _prepared(run, model, q=0.95):
    """Independent preprocessing: read the raw store, clamp at the stack's quantile, normalise."""
    ds = open_features(run / f"results/features/tiny/{model}.zarr")
    layers = [ds["features"].values[i, :, :w].astype(np.float64) for i, w in enumerate(ds["width"].values)]
    t = np.quantile(np.abs(np.concatenate([a.ravel() for a in layers])), q)
    clipped = [np.clip(a, -t, t) for a in layers]
    return [a / np.linalg.norm(a, axis=1, keepdims=True) for a in clipped]


def test_alignment_dataset_matches_brute_force(run):
    ds = xr.open_dataset(run / "results/alignment/tiny/alignment.nc", engine="scipy").load()
    assert ds["score"].dims == ("metric", "model_x", "model_y", "layer_x", "layer_y")
    assert list(ds["metric"].values) == ["mutual_knn", "cycle_knn", "unbiased_cka", "cknna"]
    assert list(ds["model_x"].values) == ["vit-test", "resnet-test", "convnext-test", "minilm"]
    assert ds.sizes["layer_x"] == 7
    vision = _prepared(run, "vit-test")
    language = _prepared(run, "minilm")
    knn = ds.sel(metric="mutual_knn")
    block = knn["score"].sel(model_x="vit-test", model_y="minilm").values
    expected = np.array([[brute_mutual_knn(X, Y, 5) for Y in language] for X in vision])
    np.testing.assert_allclose(block[:6, :7], expected, atol=1e-12)
    assert np.isnan(block[6]).all()  # vit-test has 6 layers: row 7 is padding
    transposed = knn["score"].sel(model_x="minilm", model_y="vit-test").values[:7, :6]
    np.testing.assert_array_equal(transposed, block[:6, :7].T)
    i, j = np.unravel_index(block[:6, :7].argmax(), (6, 7))
    pair = knn.sel(model_x="vit-test", model_y="minilm")
    assert pair["best"] == block[i, j] and (pair["best_layer_x"], pair["best_layer_y"]) == (i, j)
    assert np.isnan(knn["best"].values.diagonal()).all() and (knn["best_layer_x"].values.diagonal() == -1).all()
    # cycle-kNN is asymmetric: (x, y) and (y, x) are computed separately, each matching the definition
    cycle = ds["score"].sel(metric="cycle_knn")
    forward = cycle.sel(model_x="vit-test", model_y="minilm").values[2, 3]
    reverse = cycle.sel(model_x="minilm", model_y="vit-test").values[3, 2]
    assert forward == pytest.approx(brute_cycle_knn(vision[2], language[3], 5), abs=1e-12)
    assert reverse == pytest.approx(brute_cycle_knn(language[3], vision[2], 5), abs=1e-12)
    # null statistics and intervals sit beside every best score
    for metric in ds["metric"].values:
        s = ds.sel(metric=metric, model_x="vit-test", model_y="minilm")
        assert np.isfinite([s["null_mean"], s["null_std"], s["ci_low"], s["ci_high"]]).all()
        assert s["ci_low"] <= s["ci_high"] and s["null_std"] >= 0
        assert s["calibrated_mean"] == pytest.approx((s["best"] - s["null_mean"]) / (1 - s["null_mean"]))
    chance = 5 / 63
    assert chance <= float(knn["null_mean"].sel(model_x="vit-test", model_y="minilm")) < 3 * chance
    # calibration (Algorithm 2) from the pair file's null draws, by hand; q-values over the 6 pairs by scipy
    from scipy.stats import false_discovery_control

    pair_file = xr.open_dataset(run / "results/alignment/tiny/pairs/minilm/vit-test.nc", engine="scipy")
    alpha, draws = ds.attrs["alpha"], pair_file["null"].sel(metric="mutual_knn", direction="forward").values
    assert len(draws) == 20 and alpha == 0.05
    best = float(pair.best)
    assert float(pair.p_value) == (1 + (draws >= best).sum()) / 21
    assert float(pair.tau) == np.sort(np.append(draws, best))[int(np.ceil(0.95 * 21)) - 1]
    assert float(pair.calibrated) == pytest.approx(np.clip((best - pair.tau) / (1 - pair.tau), 0, 1))
    upper = np.triu_indices(4, k=1)
    p_values = knn["p_value"].values[upper]
    np.testing.assert_allclose(knn["q_value"].values[upper], false_discovery_control(p_values))
    np.testing.assert_array_equal(knn["q_value"].values, knn["q_value"].values.T)
    cycle_q = ds["q_value"].sel(metric="cycle_knn").values  # asymmetric: 12 ordered tests
    off = ~np.eye(4, dtype=bool)
    np.testing.assert_allclose(cycle_q[off], false_discovery_control(ds["p_value"].sel(metric="cycle_knn").values[off]))


def test_a_pair_jobs_null_and_interval_equal_the_public_api_on_the_features(run):
    """The pair file's null draws, τ, p-value and calibrated score against ``calibrate_layers`` run on the
    stores' features prepared independently (the same seeded permutations), and its half-sample interval
    against every layer pair scored from scratch on each half-sample's rows (no neighbour lists reused)."""
    from prh.metrics import best_of, layer_scores
    from prh.metrics.calibration import calibrate_layers, draw_permutations
    from prh.metrics.resampling import half_sample_interval, half_samples

    pair = xr.open_dataset(run / "results/alignment/tiny/pairs/minilm/vit-test.nc", engine="scipy").load()
    xs, ys = _prepared(run, "minilm"), _prepared(run, "vit-test")
    n, attrs = len(xs[0]), pair.attrs
    perms = draw_permutations(n, attrs["permutations"], attrs["null_seed"])
    rows = half_samples(n, attrs["resamples"], attrs["bootstrap_seed"])
    # neighbour counts are exact; the state store keeps Gram products in float32 (about 1e-6 on CKA)
    for metric, tol in (("mutual_knn", 1e-12), ("unbiased_cka", 1e-5)):
        params = {"k": 5} if metric == "mutual_knn" else {}
        stored = pair.sel(metric=metric, direction="forward")
        ours = calibrate_layers(metric, xs, ys, perms, attrs["alpha"], **params)
        np.testing.assert_allclose(stored["null"].values, ours.null, atol=tol)
        assert float(stored["tau"]) == pytest.approx(ours.tau, abs=tol)
        assert float(stored["p_value"]) == ours.p_value
        assert float(stored["calibrated"]) == pytest.approx(ours.calibrated, abs=tol)
        values = [best_of(layer_scores(metric, [x[r] for x in xs], [y[r] for y in ys], **params))[0] for r in rows]
        low, high = half_sample_interval(float(stored["best"]), np.array(values), attrs["level"])
        assert (float(stored["ci_low"]), float(stored["ci_high"])) == pytest.approx((low, high), abs=tol)
        assert low < float(stored["best"]) < high


def test_figures_and_report(run):
    figures = run / "results/figures/tiny"
    for name in ("best_alignment", "metric_agreement", "cross_modal_metrics", "cknna_versus_k"):
        assert (figures / f"{name}.png").stat().st_size > 10_000, name
    for x, y in CROSS_MODAL:
        assert (figures / f"layers/{x}/{y}.png").stat().st_size > 10_000
    assert not (figures / "layers/resnet-test").exists()  # vision-vision pairs get no layer figure
    ks = xr.open_dataset(run / "results/alignment/tiny/cknna_versus_k.nc", engine="scipy")
    assert ks["k"].values.tolist() == [5, 20, 63]
    snakemake(run, "--report", str(run / "report.html"))
    html = (run / "report.html").read_text(errors="ignore")
    for name in ("metric_agreement.png", "cross_modal_metrics.png", "cknna_versus_k.png", "best_alignment.png"):
        assert name in html, name
    for name in ("competence_alignment.png", "model_umap.png"):
        assert (figures / name).stat().st_size > 10_000 and name in html, name
    assert "config.yaml" in html  # the resolved config is a report item
    assert "job_costs.png" in html and (run / "results/figures/job_costs.png").stat().st_size > 10_000
    resolved = (run / "results/config.yaml").read_text()
    assert resolved.startswith("# config_hash: sha256:") and "metrics:" in resolved


def test_job_costs_table_has_every_job(run):
    """Every job's benchmark file is in the table: wall time and peak memory, by rule."""
    import polars as pl

    jobs = pl.read_parquet(run / "results/job_costs.parquet")
    counts = dict(jobs.group_by("rule").len().iter_rows())
    assert counts["align_pair"] == 6 and counts["alignment_state"] == 4 and counts["embed"] == 4
    assert counts["embed_probe_tasks"] == 3 and counts["probe"] == 3 and "job_costs" not in counts
    assert (jobs["wall_s"] > 0).all() and jobs["max_rss_mb"].is_not_null().all()
    # a job of a fraction of a second can end before the benchmark's first memory sample; model jobs cannot
    assert (jobs.filter(pl.col("rule") == "embed")["max_rss_mb"] > 100).all()
    pair = jobs.filter(pl.col("rule") == "align_pair")["job"].sort().to_list()
    assert pair[0] == "tiny/convnext-test/minilm"
    # the rule is the benchmark path's first folder: every rule's path begins with its own name
    listed = set(snakemake(run, "--list-rules").stdout.split())
    assert set(counts) <= listed and "plots" not in counts
    text = "\n".join(p.read_text() for p in sorted((REPO / "rules").glob("*.smk")))
    for rule, body in re.findall(r"^(?:local)?rule (\w+):(.*?)(?=^(?:local)?rule |\Z)", text, re.S | re.M):
        path = re.search(r'benchmark:\s*\n\s*f?"([^"]+)"', body)
        ok = path is None or path.group(1).startswith(f"logs/benchmarks/{rule}/")
        assert ok or path.group(1) == f"logs/benchmarks/{rule}.tsv", (rule, path.group(1))


def test_complete_run_has_nothing_to_do(run):
    assert planned_jobs(run) == []
    assert "Nothing to be done" in snakemake(run, "--dry-run").stdout


def test_preflight_run_again_replans_nothing_else(run):
    """Preflight forced to run again (the same references, the same result): every job that waited for it is
    still up to date (its input is ancient), so the plan is preflight (and the final target) only."""
    out = snakemake(run, "--dry-run", "--forcerun", "preflight").stdout
    assert "preflight" in set(re.findall(r"^(?:local)?rule (\w+):", out, re.M)) <= {"preflight", "all"}


def test_new_references_are_checked_before_planning(run):
    """A model added to a finished run: its references are checked while the workflow plans (no preflight
    job, nothing else replanned); a timm id that does not exist stops the plan itself with the error naming
    it, and nothing is planned or lost. A dry run writes nothing; the run writes the new report
    (results/preflight.json lists the model) before its first job."""
    report = run / "results" / "preflight.json"
    bad = {"name": "bad-net", "modality": "vision", "source": "timm", "id": "no_such_net", "pretrained": False}
    config = tiny_config()
    config["models"].append(bad)
    write_config(run, config)
    try:
        before = report.read_text()
        result = snakemake(run, "--dry-run", check=False)
        assert result.returncode != 0 and "Building DAG" not in result.stdout + result.stderr
        assert "models[4] (model 'bad-net'): 'no_such_net' is not a timm architecture" in result.stdout + result.stderr
        assert report.read_text() == before  # the last good report stays
        config["models"][-1] |= {"name": "effnet-test", "id": "test_efficientnet"}
        write_config(run, config)
        rules = {rule for rule, _ in planned_jobs(run)}
        assert "preflight" not in rules and "embed" in rules
        assert report.read_text() == before  # a dry run writes nothing
        snakemake(run, "results/config.yaml")  # a real run: the config it used, and first the new report
        assert "models[4] (model 'effnet-test')" in {e["key"] for e in json.loads(report.read_text())["references"]}
    finally:
        write_config(run, tiny_config())
        snakemake(run, "results/config.yaml")  # the finished run's config again


def test_adding_a_model_plans_only_its_jobs(run):
    new = {"name": "effnet-test", "modality": "vision", "source": "timm", "id": "test_efficientnet"}
    jobs = _with_config(run, lambda c: c["models"].append(new | {"pretrained": False, "batch_size": 16}))
    assert jobs == sorted(
        [
            ("embed", "results/features/tiny/effnet-test.zarr"),
            ("alignment_state", "results/states/tiny/effnet-test.zarr"),
            ("align_pair", "results/alignment/tiny/pairs/convnext-test/effnet-test.nc"),
            ("align_pair", "results/alignment/tiny/pairs/effnet-test/minilm.nc"),
            ("align_pair", "results/alignment/tiny/pairs/effnet-test/resnet-test.nc"),
            ("align_pair", "results/alignment/tiny/pairs/effnet-test/vit-test.nc"),
            ("aggregate_alignment", "results/alignment/tiny/alignment.nc"),
            ("trends", "results/trends/tiny.parquet"),
            ("results_page", "results/results.md"),  # the results page reads the trends
            ("plot_trend_calibration", "results/figures/tiny/trend_calibration.png"),
            ("embed_probe_tasks", "results/features/probes/digits/effnet-test.zarr"),
            ("probe", "results/probes/models/effnet-test.parquet"),
            ("competence", "results/probes/accuracy.parquet"),
            ("plot_competence_alignment", "results/figures/tiny/competence_alignment.png"),
            ("plot_model_umap", "results/figures/tiny/model_umap.png"),
            ("cknna_versus_k", "results/alignment/tiny/cknna_versus_k.nc"),
            ("plot_alignment_summary", "results/figures/tiny/best_alignment.png"),
            ("metric_variants", "results/alignment/tiny/metric_variants.nc"),  # Fig. 12 over k: a new vision model
            ("plot_metric_variants", "results/figures/tiny/metric_variants.png"),
            ("plot_cross_modal_metrics", "results/figures/tiny/cross_modal_metrics.png"),
            ("plot_cknna_versus_k", "results/figures/tiny/cknna_versus_k.png"),
            ("plot_layer_matrices", "results/figures/tiny/layers/effnet-test/minilm.png"),
            ("plot_alignment_versus_lm_score", "results/figures/tiny/alignment_versus_lm_score.png"),
            ("resolved_config", "results/config.yaml"),
            ("job_costs", "results/job_costs.parquet"),
            ("all", ""),
        ]
    )


FIGURES_OF_THE_AGGREGATE = [
    ("plot_alignment_summary", "results/figures/tiny/best_alignment.png"),
    ("plot_alignment_versus_lm_score", "results/figures/tiny/alignment_versus_lm_score.png"),
    ("plot_cknna_versus_k", "results/figures/tiny/cknna_versus_k.png"),
    ("plot_competence_alignment", "results/figures/tiny/competence_alignment.png"),
    ("plot_cross_modal_metrics", "results/figures/tiny/cross_modal_metrics.png"),
    ("plot_trend_calibration", "results/figures/tiny/trend_calibration.png"),
]
BOOKKEEPING = [("all", ""), ("job_costs", "results/job_costs.parquet"), ("resolved_config", "results/config.yaml")]


def test_removing_a_model_reruns_the_aggregate_and_its_readers_only(run):
    """The rerun table of docs/workflow.md: removing a model reruns the aggregate, the trends, competence and
    the figures that read them; no embedding, state or pair (Fig. 12 over k needs three vision models: it is
    dropped)."""
    jobs = _with_config(run, lambda c: c.update(models=[m for m in c["models"] if m["name"] != "convnext-test"]))
    assert jobs == sorted(
        BOOKKEEPING
        + FIGURES_OF_THE_AGGREGATE
        + [
            ("aggregate_alignment", "results/alignment/tiny/alignment.nc"),
            ("cknna_versus_k", "results/alignment/tiny/cknna_versus_k.nc"),
            ("competence", "results/probes/accuracy.parquet"),
            ("trends", "results/trends/tiny.parquet"),
            ("results_page", "results/results.md"),  # the results page reads the trends
        ]
    )


def test_changing_a_models_entry_reruns_that_model_and_what_reads_it(run):
    """A model's entry (its batch size): its embeddings, state, pairs and probe, and everything downstream."""

    def smaller_batches(config):
        next(m for m in config["models"] if m["name"] == "resnet-test")["batch_size"] = 8

    pairs = ["convnext-test/resnet-test", "minilm/resnet-test", "resnet-test/vit-test"]
    assert _with_config(run, smaller_batches) == sorted(
        BOOKKEEPING
        + FIGURES_OF_THE_AGGREGATE
        + [("align_pair", f"results/alignment/tiny/pairs/{pair}.nc") for pair in pairs]
        + [
            ("embed", "results/features/tiny/resnet-test.zarr"),
            ("alignment_state", "results/states/tiny/resnet-test.zarr"),
            ("embed_probe_tasks", "results/features/probes/digits/resnet-test.zarr"),
            ("probe", "results/probes/models/resnet-test.parquet"),
            ("aggregate_alignment", "results/alignment/tiny/alignment.nc"),
            ("cknna_versus_k", "results/alignment/tiny/cknna_versus_k.nc"),
            ("metric_variants", "results/alignment/tiny/metric_variants.nc"),
            ("competence", "results/probes/accuracy.parquet"),
            ("trends", "results/trends/tiny.parquet"),
            ("results_page", "results/results.md"),  # the results page reads the trends
            ("plot_layer_matrices", "results/figures/tiny/layers/minilm/resnet-test.png"),
            ("plot_metric_variants", "results/figures/tiny/metric_variants.png"),
            ("plot_model_umap", "results/figures/tiny/model_umap.png"),
        ]
    )


def test_changing_a_probes_key_reruns_the_probes_and_their_readers_only(run):
    """A `probes:` key (the C grid): every probe, competence, the trends and the figures that read them; no
    embedding, state or pair."""
    jobs = _with_config(run, lambda c: c["probes"].update(C=[0.01, 0.1, 1.0]))
    assert jobs == sorted(
        BOOKKEEPING
        + [(r, p) for r, p in FIGURES_OF_THE_AGGREGATE if r in ("plot_alignment_versus_lm_score",
                                                             "plot_competence_alignment", "plot_trend_calibration")]
        + [("probe", f"results/probes/models/{m}.parquet") for m in VISION]
        + [
            ("competence", "results/probes/accuracy.parquet"),
            ("trends", "results/trends/tiny.parquet"),
            ("results_page", "results/results.md"),  # the results page reads the trends
            ("plot_model_umap", "results/figures/tiny/model_umap.png"),
        ]
    )  # fmt: skip


def test_probe_and_competence_tables(run):
    """Every (task, vision model) probe, checked against an independent fit of the protocol with sklearn:
    the last layer, standardised, C chosen on validation (smallest on ties), refit on train + val."""
    import polars as pl
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from prh.io.features import read_layers

    accuracy = pl.read_parquet(run / "results/probes/accuracy.parquet")
    assert sorted(zip(accuracy["task"], accuracy["model"])) == sorted((t, m) for t in TASKS for m in VISION)
    assert set(accuracy["layer_choice"]) == {"last"} and set(accuracy["n_train"]) == {60}
    row = accuracy.filter((pl.col("task") == "digits") & (pl.col("model") == "resnet-test")).row(0, named=True)
    samples = pl.read_parquet(run / "data/probes/digits/samples.parquet")
    X = read_layers(run / "results/features/probes/digits/resnet-test.zarr")[-1]
    y, split = samples["label"].to_numpy(), samples["split"].to_numpy()

    def fit(mask, C):
        scaler = StandardScaler().fit(X[mask])
        return scaler, LogisticRegression(C=C, max_iter=1000, random_state=0).fit(scaler.transform(X[mask]), y[mask])

    def score(fitted, mask):
        return np.mean(fitted[1].predict(fitted[0].transform(X[mask])) == y[mask])

    val_scores = {C: score(fit(split == "train", C), split == "val") for C in (0.01, 1.0)}
    best_C = min(val_scores, key=lambda C: (-val_scores[C], C))
    assert row["C"] == best_C and row["val_accuracy"] == pytest.approx(val_scores[best_C])
    assert row["test_accuracy"] == pytest.approx(score(fit(split != "test", best_C), split == "test"))
    assert row["layer"] == 3 and row["layer_name"] == "layer4" and row["model_id"] == "test_resnet"
    assert row["task_fingerprint"] == json.loads((run / "data/probes/digits/dataset.json").read_text())["fingerprint"]
    competence = pl.read_parquet(run / "results/probes/competence.parquet")
    for model in VISION:
        mine = accuracy.filter(pl.col("model") == model)
        best = {t: accuracy.filter(pl.col("task") == t)["test_accuracy"].max() for t in TASKS}
        n_solved = sum(a >= 0.8 * best[t] - 1e-12 for t, a in zip(mine["task"], mine["test_accuracy"]))
        got = competence.filter(pl.col("model") == model).row(0, named=True)
        assert got["tasks_solved"] == n_solved and got["competence"] == n_solved / 2 and got["tasks"] == 2


def test_adding_a_probe_task_plans_only_its_jobs(run):
    """A new task: its images; each vision model embeds every task again in one job (one model load; the
    tasks are small, so start-up dominates), so every probe is refit; no alignment job."""
    task = {"name": "mnist", "kind": "mnist", "size": 60}
    jobs = _with_config(run, lambda c: c["probes"]["tasks"].append(task))
    assert jobs == sorted(
        [("probe_task", "data/probes/mnist/images.zarr")]
        + [("embed_probe_tasks", f"results/features/probes/digits/{m}.zarr") for m in VISION]
        + [("probe", f"results/probes/models/{m}.parquet") for m in VISION]
        + [
            ("competence", "results/probes/accuracy.parquet"),
            ("trends", "results/trends/tiny.parquet"),  # competence is on Fig. 2 and in the trends table
            ("results_page", "results/results.md"),  # the results page reads the trends
            ("plot_trend_calibration", "results/figures/tiny/trend_calibration.png"),
            ("plot_competence_alignment", "results/figures/tiny/competence_alignment.png"),
            ("plot_alignment_versus_lm_score", "results/figures/tiny/alignment_versus_lm_score.png"),
            ("plot_model_umap", "results/figures/tiny/model_umap.png"),
            ("resolved_config", "results/config.yaml"),
            ("job_costs", "results/job_costs.parquet"),
            ("all", ""),
        ]
    )


def _places(root):
    return {"name": "places", "kind": "places365", "root": str(root), "size": 16, "seed": 0, "download": False}


def test_adding_an_image_only_dataset_plans_its_vision_jobs_only(run, tmp_path):
    jobs = _with_config(run, lambda c: c["datasets"].append(_places(tmp_path)))
    assert jobs == sorted(
        [
            ("dataset", "data/places/images.zarr"),
            ("embed", "results/features/places/convnext-test.zarr"),
            ("embed", "results/features/places/resnet-test.zarr"),
            ("embed", "results/features/places/vit-test.zarr"),
            ("alignment_state", "results/states/places/convnext-test.zarr"),
            ("alignment_state", "results/states/places/resnet-test.zarr"),
            ("alignment_state", "results/states/places/vit-test.zarr"),
            ("align_pair", "results/alignment/places/pairs/convnext-test/resnet-test.nc"),
            ("align_pair", "results/alignment/places/pairs/convnext-test/vit-test.nc"),
            ("align_pair", "results/alignment/places/pairs/resnet-test/vit-test.nc"),
            ("aggregate_alignment", "results/alignment/places/alignment.nc"),
            ("trends", "results/trends/places.parquet"),
            ("results_page", "results/results.md"),  # the results page reads the trends
            ("plot_trend_calibration", "results/figures/places/trend_calibration.png"),
            ("plot_alignment_summary", "results/figures/places/best_alignment.png"),
            ("metric_variants", "results/alignment/places/metric_variants.nc"),
            ("plot_metric_variants", "results/figures/places/metric_variants.png"),
            ("resolved_config", "results/config.yaml"),
            ("job_costs", "results/job_costs.parquet"),
            ("all", ""),
        ]
    )


def test_image_only_dataset_end_to_end(tmp_path):
    """Places-365 (images and labels, no captions): vision models embed it and are aligned with each other."""
    places365_fixture(tmp_path / "places365", n_images=24)
    config = tiny_config() | {"datasets": [_places(tmp_path / "places365")]}
    config["models"] = [m for m in config["models"] if m["name"] != "convnext-test"]
    del config["probes"]
    write_config(tmp_path, config)
    snakemake(tmp_path)
    assert sorted(p.name for p in (tmp_path / "results/features/places").iterdir()) == [
        "resnet-test.zarr",
        "vit-test.zarr",
    ]
    alignment = xr.open_dataset(tmp_path / "results/alignment/places/alignment.nc")
    assert list(alignment["model_x"].values) == ["vit-test", "resnet-test"]
    best = alignment["best"].sel(metric="mutual_knn", model_x="resnet-test", model_y="vit-test").item()
    assert 0 <= best <= 1 and np.isfinite(best)
    assert (tmp_path / "results/figures/places/best_alignment.png").stat().st_size > 0
    assert planned_jobs(tmp_path) == []


def test_changing_the_dataset_size_reruns_everything_downstream(run):
    jobs = _with_config(run, lambda c: c["datasets"][0].update(size=48))
    rules = sorted(rule for rule, _ in jobs)
    # The probe tasks do not depend on the alignment dataset: their probes stay; Fig. 2 is redrawn.
    assert rules == sorted(
        ["dataset"] + ["embed"] * 4 + ["alignment_state"] * 4 + ["align_pair"] * 6
        + ["aggregate_alignment", "cknna_versus_k", "job_costs", "trends", "results_page", "plot_trend_calibration"]
        + ["plot_alignment_summary", "plot_cross_modal_metrics", "plot_cknna_versus_k"]
        + ["metric_variants", "plot_metric_variants"]
        + ["plot_layer_matrices"] * 3 + ["plot_alignment_versus_lm_score", "all"]
        + ["plot_competence_alignment", "plot_model_umap", "resolved_config"]
    )  # fmt: skip


def test_changing_k_reruns_alignment_but_not_embeddings(run):
    jobs = _with_config(run, lambda c: c["alignment"]["metrics"]["mutual_knn"].update(k=3))
    rules = sorted(rule for rule, _ in jobs)
    assert "embed" not in rules and "dataset" not in rules and "cknna_versus_k" not in rules
    assert rules.count("alignment_state") == 4  # neighbour lists up to the largest k
    assert rules.count("align_pair") == 6 and "aggregate_alignment" in rules
    assert "probe" not in rules and "competence" not in rules


def test_language_model_scores(tmp_path, local_llama):
    """Bits-per-byte through the workflow: the causal LM gets its score, the encoder is marked not applicable."""
    import polars as pl
    from transformers import AutoModelForCausalLM

    from prh.analysis.lm_score import bits_per_byte
    from prh.models.loading import load_tokenizer

    config = tiny_config()
    llama = {"name": "tiny-llama", "modality": "language", "source": "huggingface", "path": str(local_llama)}
    config["models"] = [config["models"][3], llama]
    del config["probes"]
    config["lm_score"] = {"max_bytes": 3000, "context": 64}
    write_config(tmp_path, config)
    snakemake(tmp_path, "results/lm_scores.parquet")
    table = pl.read_parquet(tmp_path / "results/lm_scores.parquet")
    assert table["model"].to_list() == ["minilm", "tiny-llama"]
    assert table["applicable"].to_list() == [False, True] and table["bits_per_byte"][0] is None
    corpus = (tmp_path / "data/corpora/pydoc.txt").read_text(encoding="utf-8")
    assert len(corpus.encode("utf-8")) <= 3000 and table["bytes"].to_list() == [len(corpus.encode("utf-8"))] * 2
    model = AutoModelForCausalLM.from_pretrained(local_llama).eval()
    tokenizer = load_tokenizer(llama | {"trust_remote_code": False})
    expected = bits_per_byte(model, tokenizer, corpus, context=64)["bits_per_byte"]
    assert table["bits_per_byte"][1] == pytest.approx(expected, rel=1e-6)
    assert table["bits_per_byte"][1] > 1.0  # a random model is a poor language model


SCRIPT_IMPORTS = r"""
import ast, json, sys
from pathlib import Path
repo, script = sys.argv[1], sys.argv[2]
sys.path.insert(0, repo)
for node in ast.parse(Path(script).read_text()).body:  # the script's own top-level imports, run by Python
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        exec(compile(ast.Module([node], []), script, "exec"))
prh = sorted(m.__file__ for name, m in sys.modules.items() if name.split(".")[0] == "prh")
print(json.dumps({"prh": prh, "models": sorted({"torch", "timm", "transformers"} & set(sys.modules))}))
"""


@pytest.fixture(scope="module")
def script_imports() -> dict[str, dict[str, list[str]]]:
    """Rule -> the prh files and model libraries (torch, timm, transformers) that its script's imports load,
    each script in a fresh interpreter (two at a time)."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from conftest import REPO, rule_scripts

    def imports(script: str) -> dict[str, list[str]]:
        command = [sys.executable, "-c", SCRIPT_IMPORTS, str(REPO), str(REPO / "scripts" / script)]
        return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)

    scripts = rule_scripts(REPO)
    with ThreadPoolExecutor(2) as pool:
        return dict(zip(scripts, pool.map(imports, scripts.values())))


def _declared_modules(config: dict, workdir: Path, *targets: str) -> dict[str, set[Path]]:
    """Per rule, the prh files its jobs declare as inputs, from a --forceall dry run (every job printed)."""
    workdir.mkdir()
    write_config(workdir, config)
    out = snakemake(workdir, "--dry-run", "--forceall", *targets).stdout
    declared: dict[str, set[Path]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        inputs = re.search(r"^\s+input: (.+)$", block, re.M)
        if rule and inputs:
            files = {Path(p.strip()).resolve() for p in inputs.group(1).split(",")}
            declared.setdefault(rule.group(1), set()).update(p for p in files if p.suffix == ".py")
    return declared


def test_every_rule_depends_on_exactly_the_modules_it_imports(tmp_path, script_imports):
    """Each rule's jobs declare as inputs every prh module its script loads,
    found independently by importing it in a fresh interpreter (the declared list also has the modules that
    functions import when called), and no model code unless the rule runs a model; so editing a module reruns
    the rules that use it. The two test configs, the published preset (with its export) and a hub model's fetch
    together have a job of every rule."""
    from conftest import REPO, ladder_config

    declared = _declared_modules(tiny_config(), tmp_path / "tiny")
    published = yaml.safe_load((REPO / "configs" / "published.yaml").read_text())
    hub = tiny_config()  # a hub model: its fetch job
    hub["models"].append({"name": "bert-hub", "modality": "language", "source": "huggingface", "id": "org/bert"})
    for other in (
        _declared_modules(ladder_config(), tmp_path / "ladder"),
        _declared_modules(published, tmp_path / "published", "all", "results/export/wit1024"),
        _declared_modules(hub, tmp_path / "hub", "results/fetch/models/bert-hub.json"),
    ):
        for rule, modules in other.items():
            assert declared.setdefault(rule, modules) == modules, rule
    # preflight declares no code: a rerun while its report exists would hide jobs from the planner
    # (prh.preflight.renewed_report); changed references are checked again while planning instead
    assert "preflight" not in declared and "preflight" not in script_imports
    assert set(script_imports) <= set(declared)  # every rule has a job in one of the three configs
    for rule, imports in script_imports.items():
        assert {Path(p).resolve() for p in imports["prh"]} <= declared[rule], rule
        assert ((REPO / "prh" / "models" / "loading.py").resolve() in declared[rule]) == (rule in MODEL_RULES), rule


def test_editing_a_library_module_reruns_the_rules_that_import_it(run, tmp_path):
    """Editing prh/analysis/trends.py in a scratch copy of the repository: the finished tiny run plans the rules that
    import it and their dependents, and nothing upstream."""
    import os
    import subprocess
    import sys
    import time

    from conftest import REPO

    repo, workdir = tmp_path / "repo", tmp_path / "run"
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True).stdout.split()
    for name in tracked:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        # mtimes kept: the finished run is up to date with the copy; links (scripts/<topic>/prh) copied as links
        shutil.copy2(REPO / name, repo / name, follow_symlinks=False)
    shutil.copytree(run, workdir, symlinks=True)
    module = repo / "prh" / "analysis" / "trends.py"
    module.write_text(module.read_text() + "\n# edited\n")
    later = time.time() + 60
    os.utime(module, (later, later))
    # the copy's inputs have other paths: only the mtime trigger says what an edit reruns
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d", str(workdir), "-n", "--cores", "1"]
    out = subprocess.run(cmd + ["--rerun-triggers", "mtime"], capture_output=True, text=True, check=True).stdout
    rules = set(re.findall(r"^(?:local)?rule (\w+):", out, re.M))
    assert {"trends", "plot_competence_alignment", "plot_alignment_versus_lm_score"} <= rules
    assert not rules & {"dataset", "embed", "alignment_state", "align_pair", "probe", "aggregate_alignment"}


MODEL_RULES = {
    "embed",
    "embed_probe_tasks",
    "lm_score",
    "downstream_score",
    "embed_texts",
    "density_summaries",
    "train_vision",
    "train_language",
    "train_encoder",
}  # run or train a network


def test_jobs_that_run_no_model_do_not_import_torch(script_imports):
    """Start-up: a job whose script runs no model loads neither torch nor the model libraries."""
    assert MODEL_RULES < set(script_imports)
    for rule, imports in script_imports.items():
        assert bool(imports["models"]) == (rule in MODEL_RULES), (rule, imports["models"])
