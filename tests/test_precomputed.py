"""Precomputed features as a model source: files in the PRH authors' layout and the other formats read in,
downloads over a real HTTP server (a cache, a 404, a truncated body, a wrong sha256), ``configs/published.yaml``
end to end on fixture files, the export back into the authors' layout, and ``prh.Reference``."""

from __future__ import annotations

import json
import pickle
import re
import shutil

import numpy as np
import polars as pl
import pytest
import torch
import xarray as xr
import yaml
from conftest import REPO, snakemake, write_config
from file_server import file_server, synthetic_layers, write_authors_files

from prh.analysis.trends import trend_row
from prh.config import ConfigError, validate_config
from prh.io.download import DownloadError, cache_name, fetch
from prh.io.features import read_layers, store_attrs
from prh.io.representations import RepresentationError, check_representations, read_representations
from prh.models.precomputed import export_features, import_features

N = 40
WIT = "http://vision14.csail.mit.edu/prh/wit_1024/"
# Six of configs/published.yaml's 26 models (the reference DINOv2 among them), as fixture files of its names.
SUBSET = {
    "vit-giant-p14-dinov2-lvd142m": {"layers": 6, "width": 24, "signal": 2.0, "seed": 1},
    "vit-small-p14-dinov2-lvd142m": {"layers": 4, "width": 16, "signal": 1.0, "seed": 2},
    "vit-base-p16-clip-224-laion2b": {"layers": 5, "width": 20, "signal": 1.5, "seed": 3},
    "open_llama_3b": {"layers": 4, "width": 16, "signal": 0.5, "seed": 4, "bpb": 0.9},
    "llama-7b": {"layers": 5, "width": 20, "signal": 1.5, "seed": 5, "bpb": 0.7},
    "bloomz-560m": {"layers": 3, "width": 12, "signal": 1.0, "seed": 6, "bpb": 0.8},
}


# --------------------------------------------------------------------------------------------- formats
def test_every_format_reads_the_same_layers(tmp_path):
    layers = synthetic_layers(N, 3, 8, 1.0, seed=0)
    stack = np.stack(layers)  # (L, N, D)
    torch.save({"feats": torch.from_numpy(np.stack(layers, axis=1)), "num_params": 7}, tmp_path / "a.pt")
    torch.save({"feats": [torch.from_numpy(x) for x in layers], "num_params": 7, "bpb": torch.tensor(0.5)},
               tmp_path / "b.pt")  # fmt: skip
    np.save(tmp_path / "c.npy", stack)
    np.savez(tmp_path / "d.npz", **{f"layer_{i}": x for i, x in enumerate(layers)}, num_params=np.array(7))
    from safetensors.numpy import save_file

    save_file({f"layer_{i}": x for i, x in enumerate(layers)}, str(tmp_path / "e.safetensors"), {"num_params": "7"})
    for name in ("a.pt", "b.pt", "c.npy", "d.npz", "e.safetensors"):
        reps = read_representations(tmp_path / name)
        assert len(reps.layers) == 3, name
        for got, want in zip(reps.layers, layers):
            assert got.dtype == np.float32 and np.array_equal(got, want), name
    assert read_representations(tmp_path / "b.pt").fields == {"num_params": 7, "bpb": 0.5}
    assert read_representations(tmp_path / "e.safetensors").fields == {"num_params": 7}


def test_layers_sort_by_their_numbers_and_bfloat16_is_read_as_float32(tmp_path):
    layers = [np.full((4, 2), i, dtype=np.float32) for i in range(12)]
    np.savez(tmp_path / "x.npz", **{f"layer_{i}": x for i, x in enumerate(layers)})
    assert [int(x[0, 0]) for x in read_representations(tmp_path / "x.npz").layers] == list(range(12))
    torch.save({"feats": torch.ones(4, 2, 3, dtype=torch.bfloat16)}, tmp_path / "bf.pt")
    assert {x.dtype for x in read_representations(tmp_path / "bf.pt").layers} == {np.dtype(np.float32)}


class Payload:  # a pickled object that weights_only loading refuses
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_a_file_that_needs_unpickling_is_refused_never_unpickled(tmp_path, capsys):
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"feats": Payload()}, f)
    with pytest.raises(RepresentationError, match=r"evil\.pt: refused.*weights_only=True.*not unpickled"):
        read_representations(tmp_path / "evil.pt")
    assert "unpickled!" not in capsys.readouterr().out


def test_a_wrong_number_of_samples_or_a_nan_is_one_error_naming_model_file_and_shapes(tmp_path):
    reps = read_representations(_pt(tmp_path / "short.pt", N - 1))
    with pytest.raises(RepresentationError) as err:
        check_representations("llama-7b", "http://host/short.pt", reps, N)
    assert re.search(rf"model 'llama-7b' \(http://host/short\.pt\): layer 0 has shape \({N - 1}, 8\), expected \({N},",
                     str(err.value))  # fmt: skip
    layers = synthetic_layers(N, 2, 8, 1.0, seed=0)
    layers[1][7, 3] = np.nan
    torch.save({"feats": [torch.from_numpy(x) for x in layers]}, tmp_path / "nan.pt")
    with pytest.raises(RepresentationError, match=r"model 'm' \(nan\.pt\): layer 1 .*NaN or Inf at sample 7"):
        check_representations("m", "nan.pt", read_representations(tmp_path / "nan.pt"), N)


def test_layer_names_from_the_config_must_name_every_layer(tmp_path):
    record = {"size": N, "fingerprint": "sha256:x"}
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dataset.json").write_text(json.dumps(record))
    spec = {"name": "m", "modality": "vision", "path": str(_pt(tmp_path / "m.pt", N)), "layer_names": ["a", "b"]}
    with pytest.raises(RepresentationError, match="layer_names has 2 names, .*m.pt holds 3 layers"):
        import_features(spec, tmp_path / "data", tmp_path / "m.zarr", dataset_name="d", cache=tmp_path)
    spec["layer_names"] = ["a", "b", "c"]
    store = import_features(spec, tmp_path / "data", tmp_path / "m.zarr", dataset_name="d", cache=tmp_path)
    assert yaml.safe_load(store_attrs(store)["layer_names"]) == ["a", "b", "c"]


def _pt(path, n, layers=3, width=8):
    torch.save({"feats": torch.from_numpy(np.stack(synthetic_layers(n, layers, width, 1.0, 0), axis=1))}, path)
    return path


# -------------------------------------------------------------------------------------------- downloads
def test_downloads_are_cached_checked_and_never_used_when_short(tmp_path):
    served_dir, cache = tmp_path / "served", tmp_path / "cache"
    served_dir.mkdir()
    _pt(served_dir / "m.pt", N)
    with file_server(served_dir) as (base, served):
        first = fetch(f"{base}/m.pt", cache, progress=False)
        again = fetch(f"{base}/m.pt", cache, sha256=first["sha256"], progress=False)
        assert served["m.pt"] == 1 and again["path"] == first["path"]  # the cached copy, checked by its sha256
        with pytest.raises(DownloadError, match=r"/missing\.pt: the server answers 404"):
            fetch(f"{base}/missing.pt", cache, progress=False)
        with pytest.raises(DownloadError, match=r"/truncated/m\.pt: the download failed"):
            fetch(f"{base}/truncated/m.pt", cache, retries=1, progress=False)
        assert served["truncated/m.pt"] == 2  # pooch tried again
        with pytest.raises(DownloadError, match="hash of downloaded file"):
            fetch(f"{base}/m.pt", tmp_path / "other", sha256="0" * 64, retries=0, progress=False)
        # a cached file of the wrong size (cut short by an earlier tool) is fetched again, never used
        cached = cache / cache_name(f"{base}/m.pt")
        cached.write_bytes(cached.read_bytes()[:100])
        assert fetch(f"{base}/m.pt", cache, progress=False)["sha256"] == first["sha256"]
        assert served["m.pt"] == 3  # the first, the one that failed its sha256, and this one
    leftovers = [p.name for p in (*cache.iterdir(), *(tmp_path / "other").iterdir()) if p.name != cached.name]
    assert leftovers == []  # failed downloads leave nothing


# ------------------------------------------------------------------------------------ the published preset
def published_config(base: str, n: int = N, models=SUBSET) -> dict:
    """configs/published.yaml on ``models`` of its own, their URLs on the fixture server, at a test's size."""
    config = yaml.safe_load((REPO / "configs" / "published.yaml").read_text())
    config["models"] = [m | {"url": m["url"].replace(WIT, base + "/")} for m in config["models"] if m["name"] in models]
    config["datasets"][0]["size"] = n
    config["precomputed"]["cache"] = "cache"
    config["alignment"]["null_distribution"]["permutations"] = 19
    config["alignment"]["bootstrap"]["resamples"] = 20
    config["figures"] = {"cknna_k": [5, 20], "agreement": {"k": [5, 10], "bsz": [16, 32]}}
    return config


def fixture_files(folder, config: dict, n: int = N) -> dict:
    entries = [{"name": m["name"], "modality": m["modality"], "file": m["url"].rsplit("/", 1)[1]} | SUBSET[m["name"]]
               for m in config["models"]]  # fmt: skip
    return write_authors_files(folder, entries, n)


@pytest.fixture(scope="module")
def published_run(tmp_path_factory):
    """configs/published.yaml on six of its models, served over HTTP from fixture files (N = 40)."""
    root = tmp_path_factory.mktemp("published")
    run = root / "run"
    run.mkdir()
    with file_server(root / "served") as (base, served):
        config = published_config(base)
        fixture_files(root / "served", config)
        write_config(run, config)
        snakemake(run)
        snakemake(run, "results/export/wit1024")
        yield run, dict(served), config


def test_the_published_preset_runs_on_downloaded_files_and_downloads_nothing_else(published_run):
    run, served, config = published_run
    assert sorted(served) == sorted(m["url"].rsplit("/", 1)[1] for m in config["models"])
    assert set(served.values()) == {1}  # each file once
    assert not (run / "data" / "wit1024" / "images.zarr").exists()  # no image or caption downloaded
    record = yaml.safe_load((run / "data" / "wit1024" / "dataset.json").read_text())
    assert record["contents"] == "not downloaded" and record["size"] == N
    figures = run / "results" / "figures"
    for name in ("best_alignment", "cross_modal_metrics", "alignment_versus_lm_score", "cknna_versus_k",
                 "metric_agreement", "metric_variants", "trend_calibration"):  # fmt: skip
        assert (figures / "wit1024" / f"{name}.png").is_file(), name
    assert (figures / "downstream_hellaswag.png").is_file() and (figures / "downstream_gsm8k.png").is_file()


def test_a_features_store_keeps_the_file_its_fields_and_its_provenance(published_run):
    run, _, config = published_run
    store = run / "results" / "features" / "wit1024" / "llama-7b.zarr"
    attrs = store_attrs(store)
    file = yaml.safe_load(attrs["model_file"])
    assert file["url"].endswith("/huggyllama_llama-7b_pool-avg.pt") and len(file["sha256"]) == 64
    assert file["bytes"] > 0 and attrs["model_source"] == "features"
    assert int(attrs["model_parameters"]) == 1000 * (SUBSET["llama-7b"]["seed"] + 1)
    assert yaml.safe_load(attrs["model_file_fields"])["bpb"] == pytest.approx(0.7)
    want = synthetic_layers(N, 5, 20, 1.5, seed=5)
    assert all(np.array_equal(got, w) for got, w in zip(read_layers(store, np.float32), want))
    assert xr.open_zarr(store)["mask"].shape == (N, 12)


def test_stored_bits_per_byte_is_fig3s_x(published_run):
    run = published_run[0]
    scores = pl.read_parquet(run / "results" / "lm_scores.parquet")
    stored = {r["model"]: r["bits_per_byte"] for r in scores.filter(pl.col("corpus") == "stored").to_dicts()}
    assert stored == pytest.approx({"open_llama_3b": 0.9, "llama-7b": 0.7, "bloomz-560m": 0.8})
    trends = pl.read_parquet(run / "results" / "trends" / "wit1024.parquet")
    fig3 = trends.filter((pl.col("trend") == "fig3") & (pl.col("metric") == "mutual_knn") & (pl.col("score") == "raw"))
    row = fig3.to_dicts()[0]
    assert dict(zip(row["models"], row["x_values"])) == pytest.approx({m: 1 - v for m, v in stored.items()})


def test_fig4_reads_the_published_tables_and_counts_the_models_left_out(published_run):
    run = published_run[0]
    hellaswag = pl.read_parquet(run / "results" / "published" / "hellaswag.parquet")
    by_model = {r["model"]: r["accuracy"] for r in hellaswag.to_dicts()}
    assert by_model == {"open_llama_3b": 0.67, "llama-7b": 0.73, "bloomz-560m": None}  # BLOOMZ: no published row
    gsm8k = pl.read_parquet(run / "results" / "published" / "gsm8k.parquet")
    assert {r["model"]: r["accuracy"] for r in gsm8k.to_dicts()}["llama-7b"] == 0.110


def test_export_round_trip_gives_bit_identical_stores(published_run, tmp_path):
    run = published_run[0]
    exported = sorted(p.name for p in (run / "results" / "export" / "wit1024").glob("*.pt"))
    assert "vit_giant_patch14_dinov2.lvd142m_pool-cls.pt" in exported
    assert "huggyllama_llama-7b_pool-avg.pt" in exported and len(exported) == len(SUBSET)
    pt = torch.load(run / "results" / "export" / "wit1024" / "huggyllama_llama-7b_pool-avg.pt", weights_only=True)
    assert pt["feats"].shape == (N, 5, 20) and pt["num_params"] == 6000 and float(pt["bpb"]) == pytest.approx(0.7)
    record = run / "data" / "wit1024"
    for path in (run / "results" / "export" / "wit1024").glob("*.pt"):
        spec = {"name": path.stem, "modality": "vision", "path": str(path)}
        back = import_features(spec, record, tmp_path / f"{path.stem}.zarr", dataset_name="wit1024", cache=tmp_path)
        stores = (run / "results" / "features" / "wit1024").iterdir()
        source = next(s for s in stores if path.name.startswith(store_attrs(s)["model_id"].replace("/", "_")))
        for a, b in zip(read_layers(source, np.float32), read_layers(back, np.float32), strict=True):
            assert a.tobytes() == b.tobytes()


def test_an_embedded_models_export_reads_back_bit_identical(tiny_run, tmp_path):
    store = tiny_run / "results" / "features" / "tiny" / "resnet-test.zarr"  # CNN blocks: widths differ, a list
    path = export_features(store, tmp_path)
    assert path.name == "test_resnet_pool-avg.pt"
    assert isinstance(torch.load(path, weights_only=True)["feats"], list)
    back = import_features({"name": "r", "modality": "vision", "path": str(path)}, tiny_run / "data" / "tiny",
                           tmp_path / "r.zarr", dataset_name="tiny", cache=tmp_path)  # fmt: skip
    for a, b in zip(read_layers(store, np.float32), read_layers(back, np.float32), strict=True):
        assert a.tobytes() == b.tobytes()
    # another run's features store read in as it is
    again = import_features({"name": "z", "modality": "vision", "path": str(store)}, tiny_run / "data" / "tiny",
                            tmp_path / "z.zarr", dataset_name="tiny", cache=tmp_path)  # fmt: skip
    assert store_attrs(again)["layer_names"] == store_attrs(store)["layer_names"]
    for a, b in zip(read_layers(store, np.float32), read_layers(again, np.float32), strict=True):
        assert a.tobytes() == b.tobytes()


# -------------------------------------------------------------------------------------------- bad inputs
DAMAGED = {  # one damaged file per model of one run (--keep-going), and the error its job must name
    "vit-small-p14-dinov2-lvd142m": r"truncated/vit_small_patch14_dinov2\.lvd142m_pool-cls\.pt: the download failed",
    "vit-base-p16-clip-224-laion2b": (
        rf"model 'vit-base-p16-clip-224-laion2b' .*: layer 0 has shape \({N - 2}, 20\), expected \({N}, D\)"
    ),
    "open_llama_3b": r"model 'open_llama_3b' .*layer 2 .*NaN or Inf at sample 3",
    "bloomz-560m": r"bigscience_bloomz-560m_pool-avg\.pt.*hash of downloaded file .* does not match the known hash",
}


def test_each_bad_file_is_one_clear_error_and_leaves_nothing_half_written(tmp_path):
    models = {k: SUBSET[k] for k in [*DAMAGED, "vit-giant-p14-dinov2-lvd142m", "llama-7b"]}
    with file_server(tmp_path / "served") as (base, _):
        config = published_config(base, models=models)
        paths = fixture_files(tmp_path / "served", config)
        entries = {m["name"]: m for m in config["models"]}
        entries["vit-small-p14-dinov2-lvd142m"]["url"] = entries["vit-small-p14-dinov2-lvd142m"]["url"].replace(
            base, base + "/truncated"
        )
        short = entries["vit-base-p16-clip-224-laion2b"]
        write_authors_files(tmp_path / "served", [short | SUBSET[short["name"]] | {"file": paths[short["name"]].name}],
                            N - 2)  # fmt: skip
        content = torch.load(paths["open_llama_3b"], weights_only=True)
        content["feats"][2][3, 0] = float("nan")
        torch.save(content, paths["open_llama_3b"])
        entries["bloomz-560m"]["sha256"] = "0" * 64
        run = tmp_path / "run"
        run.mkdir()
        write_config(run, config)
        targets = [f"results/features/wit1024/{m}.zarr" for m in models]
        result = snakemake(run, "--keep-going", *targets, check=False)
    assert result.returncode != 0
    features = run / "results" / "features" / "wit1024"
    for model, message in DAMAGED.items():
        log = (run / "logs" / "precomputed" / "wit1024" / f"{model}.log").read_text()
        assert re.search(message, log, re.S), log[-2000:]
        assert not (features / f"{model}.zarr").exists()
    assert (features / "llama-7b.zarr").is_dir() and (features / "vit-giant-p14-dinov2-lvd142m.zarr").is_dir()
    assert [p.name for p in features.iterdir() if not p.name.endswith(".zarr")] == []  # no .partial
    assert sorted(p.name for p in (run / "cache").iterdir()) == sorted(
        f.name for f in (run / "cache").iterdir() if not f.name.startswith("tmp")
    )  # pooch's temporary files are gone


def test_a_missing_file_stops_the_run_at_preflight_before_any_job(tmp_path):
    models = {k: SUBSET[k] for k in ("vit-giant-p14-dinov2-lvd142m", "llama-7b")}
    with file_server(tmp_path / "served") as (base, served):
        config = published_config(base, models=models)
        fixture_files(tmp_path / "served", config)["llama-7b"].unlink()
        run = tmp_path / "run"
        run.mkdir()
        write_config(run, config)
        result = snakemake(run, check=False)
    assert result.returncode != 0 and served == {}
    pattern = r"models\[\d+\] \(model 'llama-7b'\)\.url: .*huggyllama_llama-7b_pool-avg\.pt: the server answers 404"
    assert re.search(pattern, result.stdout + result.stderr)
    assert not (run / "results" / "features").exists()


def test_a_features_model_needs_one_file_a_dataset_and_none_of_a_running_models_keys():
    config = yaml.safe_load((REPO / "configs" / "published.yaml").read_text())
    config["models"][0] |= {"path": "x.pt", "package": "p"}
    config["models"][1]["dataset"] = "nowhere"
    config["models"][2].pop("url")
    config["datasets"][0].pop("size")
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    text = str(err.value)
    assert "models[0] (model 'vit-tiny-p16-224-augreg-in21k'): a features model needs exactly one of url, path" in text
    assert "models[0] (model 'vit-tiny-p16-224-augreg-in21k'): package do not apply to a features model" in text
    assert "models[1] (model 'vit-small-p16-224-augreg-in21k').dataset: 'nowhere' is not a dataset" in text
    assert "(given: none)" in text and "datasets[0] (dataset 'wit1024').size: every model" in text


# ---------------------------------------------------------------------------------------- prh.Reference
@pytest.mark.parametrize("metric", ["mutual_knn", "cknna", "unbiased_cka", "svcca"])
def test_reference_scores_equal_the_workflows_for_a_model_added_by_config(published_run, metric):
    import prh

    run = published_run[0]
    added = "llama-7b"  # a model the run added by config: scored again as a user's own features
    others = [m for m in SUBSET if m != added]
    table = prh.Reference(run, "wit1024", models=others).score(
        synthetic_layers(N, 5, 20, 1.5, seed=5), metric, name=added, modality="language"
    )
    assert table["reference"].to_list() == others
    with xr.open_dataset(run / "results" / "alignment" / "wit1024" / "alignment.nc", engine="scipy") as ds:
        want = ds.sel(metric=metric, model_x=added, model_y=others).load()
    for column, variable in [("best", "best"), ("calibrated", "calibrated"), ("tau", "tau"), ("p_value", "p_value"),
                             ("ci_low", "ci_low"), ("ci_high", "ci_high"), ("last", "last"),
                             ("layer", "best_layer_x"), ("reference_layer", "best_layer_y")]:  # fmt: skip
        np.testing.assert_allclose(table[column].to_numpy(), want[variable].values, rtol=0, atol=1e-12, err_msg=column)
    from prh.metrics.calibration import benjamini_hochberg

    np.testing.assert_array_equal(table["q_value"].to_numpy(), benjamini_hochberg(want["p_value"].values))


def test_reference_takes_torch_and_numpy_and_names_bad_input(published_run):
    import prh

    ref = prh.Reference(published_run[0], "wit1024", models=["vit-giant-p14-dinov2-lvd142m", "llama-7b"])
    layers = synthetic_layers(N, 3, 8, 1.0, seed=9)
    as_list = ref.score(layers, k=5)
    as_stack = ref.score(torch.from_numpy(np.stack(layers)), k=5)  # (L, N, D) in torch
    assert as_list.equals(as_stack) and as_list["layer"].max() <= 2
    single = ref.score(layers[-1].astype(np.float64), name="one")  # (N, D)
    assert (single["layer"] == 0).all()
    with pytest.raises(ValueError, match=rf"model 'yours' \(features\): layer 0 has shape \({N - 1}, 8\), expected"):
        ref.score(layers[0][:-1])
    bad = layers[0].copy()
    bad[5, 1] = np.inf
    with pytest.raises(ValueError, match="layer 0 .*NaN or Inf at sample 5"):
        ref.score(bad)
    with pytest.raises(ValueError, match="metric 'nope' is unknown"):
        ref.score(layers, "nope")
    with pytest.raises(ValueError, match=r"models: \['gpt-5'\] are not models of dataset 'wit1024'"):
        prh.Reference(published_run[0], "wit1024", models=["gpt-5"])
    with pytest.raises(ValueError, match="lacks"):
        ref.score(layers, k=30)  # deeper than the run's neighbour lists
    with pytest.raises(ValueError, match="downloaded nothing of it"):
        ref.data("vision")


def test_the_published_preset_over_the_default_config_plans_the_26_models_and_nothing_to_embed(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    out = snakemake(tmp_path, "--configfile", str(REPO / "configs" / "published.yaml"), "--dry-run").stdout
    counts = {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[1], re.M)}
    assert counts["precomputed_features"] == 26 and counts["align_pair"] == 26 * 25 // 2
    assert counts["lm_score"] == 12 and counts["published_scores"] == 2 and counts["dataset_record"] == 1
    for rule in ("embed", "dataset", "lm_corpus", "probe", "embed_texts", "downstream_score", "train_vision"):
        assert rule not in counts, rule


def test_the_files_parameter_counts_are_the_x_of_the_size_trends(published_run):
    run = published_run[0]
    trends = pl.read_parquet(run / "results" / "trends" / "wit1024.parquet")
    with xr.open_dataset(run / "results" / "alignment" / "wit1024" / "alignment.nc", engine="scipy") as ds:
        best = ds["best"].sel(metric="mutual_knn").load()
    vision = [m for m in SUBSET if "vit" in m]
    language = [m for m in SUBSET if m not in vision]
    for trend, models, others in (("size_vision", vision, vision), ("size_language", language, vision)):
        row = trend_row(trends, trend, "mutual_knn")
        assert sorted(row["models"]) == sorted(models)
        x = {m: np.log10(1000 * (SUBSET[m]["seed"] + 1)) for m in models}
        assert dict(zip(row["models"], row["x_values"])) == pytest.approx(x)
        y = {m: np.mean([float(best.sel(model_x=m, model_y=o)) for o in others if o != m]) for m in models}
        assert dict(zip(row["models"], row["y_values"])) == pytest.approx(y)


def test_preflight_asks_each_url_for_its_size_and_accepts_an_unreachable_one_only_when_cached(tmp_path):
    from prh.preflight import check, references

    _pt(tmp_path / "served.pt", N)
    with file_server(tmp_path) as (base, served):
        config = published_config(base, models={"llama-7b": SUBSET["llama-7b"]})
        config["models"][0]["url"] = f"{base}/served.pt"
        config["models"].append(config["models"][0] | {"name": "gone", "url": f"{base}/gone.pt"})
        config["precomputed"]["cache"] = str(tmp_path / "cache")
        config["downstream"]["tasks"] = {"shapes-anchor": None}
        config = validate_config(config)
        report = check(references(config), tmp_path)
        assert served == {}  # nothing downloaded
        got = fetch(f"{base}/served.pt", tmp_path / "cache", progress=False)
    assert report["hub"] == "no hub references"  # the declared dataset is not read from the hub
    assert [r.get("bytes") for r in report["references"]] == [got["bytes"], None]
    assert report["problems"] == [f"models[1] (model 'gone').url: {base}/gone.pt: the server answers 404 Not Found"]
    # the server gone: unreachable fails closed, unless the cache holds a copy of the given sha256
    config["models"] = config["models"][:1]
    offline = check(references(config), tmp_path)
    assert "cannot be reached" in offline["problems"][0] and "no copy with its sha256" in offline["problems"][0]
    config["models"][0]["sha256"] = got["sha256"]
    assert check(references(config), tmp_path)["problems"] == []
