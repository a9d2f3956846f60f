"""Bad configs stop with one error that names the key or the model, before any job runs."""

from __future__ import annotations

import pytest
from conftest import snakemake, tiny_config, write_config

from prh.config import ConfigError, validate_config


def _break(mutate):
    config = tiny_config()
    mutate(config)
    return config


BAD_CONFIGS = {
    "unknown top-level key": (lambda c: c.update(extra=1), r"\(top level\): Additional properties .*'extra'"),
    "Fig. 3's corpus not among the scored ones": (
        lambda c: c.update(lm_score={"corpus": "shapes", "corpora": ["pydoc"]}),
        r"lm_score\.corpus: 'shapes' \(Fig\. 3's\) is not among lm_score\.corpora \['pydoc'\]",
    ),
    "unknown model key": (
        lambda c: c["models"][1].update(bach_size=4),
        r"models\[1\] \(model 'resnet-test'\): Additional properties .*'bach_size'",
    ),
    "wrong type": (
        lambda c: c["models"][0].update(batch_size="big"),
        r"models\[0\] \(model 'vit-test'\)\.batch_size: 'big' is not of type 'integer'",
    ),
    "k below one": (
        lambda c: c["alignment"]["metrics"]["mutual_knn"].update(k=0),
        r"alignment\.metrics\.mutual_knn\.k: 0 is less than the minimum of 1",
    ),
    "k too large for the dataset": (
        lambda c: c["alignment"]["metrics"]["mutual_knn"].update(k=64),
        r"alignment\.metrics\.mutual_knn\.k: k = 64 needs at least k \+ 1 samples, but dataset 'tiny' has 64",
    ),
    "unknown source": (
        lambda c: c["models"][3].update(source="hub"),
        r"models\[3\] \(model 'minilm'\)\.source: 'hub' is not one of",
    ),
    "unknown modality": (
        lambda c: c["models"][0].update(modality="audio"),
        r"models\[0\] \(model 'vit-test'\)\.modality: 'audio' is not one of",
    ),
    "modality that the source cannot give": (
        lambda c: c["models"][0].update(modality="language"),
        r"models\[0\] \(model 'vit-test'\)\.modality: source 'timm' gives vision models",
    ),
    "duplicate model names": (
        lambda c: c["models"][1].update(name="vit-test"),
        r"models: the name 'vit-test' is used by 2 entries",
    ),
    "huggingface model without a location": (
        lambda c: c["models"][3].pop("package"),
        r"models\[3\] \(model 'minilm'\): a huggingface model needs exactly one of id, path, package",
    ),
    "probe task of an unknown kind": (
        lambda c: c["probes"]["tasks"][0].update(kind="imagenet"),
        r"probes\.tasks\[0\]\.kind: 'imagenet' is not one of",
    ),
    "shapes probe task without its attribute": (
        lambda c: c["probes"]["tasks"][1].pop("attribute"),
        r"probes\.tasks\[1\]: 'attribute' is a required property",
    ),
    "probe splits that leave no test set": (
        lambda c: c["probes"]["tasks"][0].update(train=0.8, val=0.2),
        r"probes\.tasks\[0\] \(task 'digits'\): train \+ val = 1 leaves no test split",
    ),
    "probe key of another kind": (
        lambda c: c["probes"]["tasks"][0].update(attribute="count"),
        r"probes\.tasks\[0\] \(task 'digits'\): attribute do not apply to kind 'digits'",
    ),
    "vtab task without a pinned revision": (
        lambda c: c["probes"]["tasks"].append({"name": "dtd", "kind": "vtab", "id": "clip-benchmark/wds_vtab-dtd"}),
        r"probes\.tasks\[2\] \(task 'dtd'\)\.revision: pin the hub revision",
    ),
    "Fig. 2 on a dataset that does not exist": (
        lambda c: c["probes"]["alignment"].update(dataset="places"),
        r"probes\.alignment\.dataset: 'places' is not a dataset \(tiny\)",
    ),
    "Fig. 2 with a metric that is not computed": (
        lambda c: c["probes"]["alignment"].update(metric="cka"),
        r"probes\.alignment\.metric: 'cka' is not computed",
    ),
    "unknown metric": (
        lambda c: c["alignment"]["metrics"].update(cosine={}),
        r"alignment\.metrics: Additional properties .*'cosine'",
    ),
    "downstream reference not a vision model": (
        lambda c: c.update(downstream={"reference": "minilm", "tasks": {"t": {"kind": "shapes", "size": 3}}}),
        r"downstream\.reference: 'minilm' is not a vision model of models",
    ),
    "downstream task without its file": (
        lambda c: c.update(downstream={"reference": "vit-test", "tasks": {"mine": {"kind": "table"}}}),
        r"downstream\.tasks\.mine: kind table needs path",
    ),
    "density level beyond what Z describes": (
        lambda c: c.update(density={"dataset": "tiny", "levels": ["count", "materials"]}),
        r"density\.levels\[1\]: 'materials' is beyond what the shapes world's Z describes \(count, shapes,",
    ),
    "density model of the wrong modality": (
        lambda c: c.update(density={"dataset": "tiny", "language": ["vit-test"]}),
        r"density\.language\[0\]: 'vit-test' is not a language model of models",
    ),
    "density size below k": (
        lambda c: c.update(density={"dataset": "tiny", "size": 6}),
        r"density\.size: 6 samples leave no room for alignment\.metrics\.mutual_knn\.k = 5",
    ),
    "unknown colour name": (
        lambda c: c.update(colour={"sets": {"mine": ["red", "green", "bleu", "black"]}}),
        r"colour\.sets\.mine\[2\]: 'bleu' is not an XKCD colour name",
    ),
    "idealised merge that does not divide": (
        lambda c: c.update(idealised={"enabled": True, "states": 10, "merge": 4}),
        r"idealised\.merge: 4 does not divide idealised\.states = 10",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_names_the_problem(case):
    mutate, pattern = BAD_CONFIGS[case]
    with pytest.raises(ConfigError, match=pattern):
        validate_config(_break(mutate))


def test_defaults_are_filled_in():
    config = validate_config(tiny_config())
    assert config["models"][3]["pooling"] == "auto" and config["models"][3]["dtype"] == "float32"
    assert config["models"][0]["max_length"] is None and config["datasets"][0]["seed"] == 3


def test_workflow_stops_before_any_job(workdir):
    write_config(workdir, _break(lambda c: c["models"][3].update(source="hub")))
    result = snakemake(workdir, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "models[3] (model 'minilm').source: 'hub' is not one of" in output
    assert "ConfigError" in output
    assert not (workdir / "data").exists() and not (workdir / "results").exists()


def test_a_task_file_missing_a_column_stops_the_config(tmp_path):
    """A parquet task and a published-score table are read at validation, before any job: one error each."""
    import polars as pl

    pl.DataFrame({"context": ["a"], "endings": [["b", "c"]]}).write_parquet(tmp_path / "t.parquet")
    (tmp_path / "gsm8k.csv").write_text("model_id,accuracy,setting,url\nminilm,0.1,5-shot,u\n")
    tasks = {"mine": {"kind": "table", "path": str(tmp_path / "t.parquet")},
             "gsm8k": {"kind": "published", "table": str(tmp_path / "gsm8k.csv")}}  # fmt: skip
    with pytest.raises(ConfigError) as err:
        validate_config(_break(lambda c: c.update(downstream={"reference": "vit-test", "tasks": tasks})))
    assert "downstream.tasks.mine (" in str(err.value) and "the task table has no column 'label'" in str(err.value)
    assert "downstream.tasks.gsm8k (" in str(err.value) and "table has no column 'source'" in str(err.value)


def test_a_preset_drops_a_task_by_setting_it_to_null():
    """Snakemake merges a preset over config.yaml key by key: null is how a preset removes a task."""
    tasks = {"offline": None, "kept": {"kind": "shapes", "size": 3}}
    down = {"dataset": "tiny", "reference": "vit-test", "tasks": tasks}
    config = validate_config(_break(lambda c: c.update(downstream=down)))
    assert list(config["downstream"]["tasks"]) == ["kept"]
