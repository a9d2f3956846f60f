"""The fetch stage: each hub repository downloaded once by huggingface_hub's own snapshot_download from the
local hub server of the tests (tests/hub_server.py, real HTTP, real files), at the commit preflight resolved,
verified file by file; cold cache, interrupted transfer, corrupted files; and the preflight that fails closed
when the hub cannot be asked."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
from hub_server import recorded_hub

from prh.io.fetch import FetchError, fetch, snapshot_folder
from prh.preflight import PreflightError, Reference, check, preflight_references

REPO = "prh-tests/tiny-encoder"


@pytest.fixture
def online(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the suite runs offline; this hub is local


@pytest.fixture
def model_folder(tmp_path):
    """A model repo's files: safetensors weights, the same weights as a pickle (a format not fetched), config,
    tokenizer, card."""
    folder = tmp_path / "repo"
    folder.mkdir()
    rng = np.random.default_rng(0)
    (folder / "model.safetensors").write_bytes(rng.bytes(300_000))
    (folder / "pytorch_model.bin").write_bytes(rng.bytes(300_000))
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0", "vocab": list("abcdef")}))
    (folder / "README.md").write_text("# tiny\n")
    return folder


def _entry(api, ref: Reference) -> dict:
    report = check([ref], ".", api, token="")
    assert report["problems"] == [], report["problems"]
    return report["references"][0]


def _model_ref() -> Reference:
    return Reference("models[0] (model 'tiny')", "model", REPO, "main")


def test_a_cold_cache_gets_exactly_the_files_preflight_listed_at_its_commit(online, model_folder, tmp_path):
    from huggingface_hub import HfApi

    servers, cache = [], tmp_path / "cache"
    with recorded_hub(repos={f"models/{REPO}": model_folder}, server_out=servers) as endpoint:
        entry = _entry(HfApi(endpoint=endpoint), _model_ref())
        assert sorted(entry["fetch"]) == ["README.md", "config.json", "model.safetensors", "tokenizer.json"]
        manifest = fetch(entry, cache, endpoint=endpoint)
        assert sorted(servers[0].downloads) == sorted(f"{REPO}/{name}" for name in entry["fetch"])
        again = fetch(entry, cache, endpoint=endpoint)  # a warm cache: nothing is transferred again
        assert len(servers[0].downloads) == 4 and again == manifest
    assert manifest["sha"] == entry["sha"] and manifest["files"] == entry["fetch"]
    # The jobs find the snapshot by the config's revision, offline; every byte is the hub's.
    folder = snapshot_folder(REPO, "main", "model", cache)
    assert str(folder) == manifest["snapshot"] and not (folder / "pytorch_model.bin").exists()
    for name in entry["fetch"]:
        assert (folder / name).read_bytes() == (model_folder / name).read_bytes()
    with pytest.raises(FileNotFoundError, match="is not in the hub cache .*fetch stage"):
        snapshot_folder(REPO, "v2", "model", cache)
    # A revision that is a branch with slashes (refs/convert/parquet) is found by its name too.
    with recorded_hub(repos={f"models/{REPO}": model_folder}) as endpoint:
        fetch(entry | {"revision": "refs/convert/parquet"}, cache, endpoint=endpoint)
    assert snapshot_folder(REPO, "refs/convert/parquet", "model", cache) == folder


def test_an_interrupted_transfer_resumes_and_is_whole(online, model_folder, tmp_path):
    from huggingface_hub import HfApi

    servers = []
    weights = f"{REPO}/model.safetensors"
    with recorded_hub(repos={f"models/{REPO}": model_folder}, interrupt=[weights], server_out=servers) as endpoint:
        entry = _entry(HfApi(endpoint=endpoint), _model_ref())
        manifest = fetch(entry, tmp_path / "cache", endpoint=endpoint)
        assert servers[0].interrupted == {weights}  # the first transfer did drop half way
    got = (tmp_path / "cache").glob("models--*/snapshots/*/model.safetensors")
    expected = hashlib.sha256((model_folder / "model.safetensors").read_bytes()).hexdigest()
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in got] == [expected]
    assert manifest["files"]["model.safetensors"] == 300_000


def test_a_file_damaged_in_the_cache_is_fetched_again(online, model_folder, tmp_path):
    from huggingface_hub import HfApi

    servers, cache = [], tmp_path / "cache"
    with recorded_hub(repos={f"models/{REPO}": model_folder}, server_out=servers) as endpoint:
        entry = _entry(HfApi(endpoint=endpoint), _model_ref())
        fetch(entry, cache, endpoint=endpoint)
        blob = (snapshot_folder(REPO, "main", "model", cache) / "model.safetensors").resolve()
        data = bytearray(blob.read_bytes())
        data[1000] ^= 0xFF  # one flipped byte: the size is right, the sha256 is not
        blob.write_bytes(bytes(data))
        fetch(entry, cache, endpoint=endpoint)
        assert servers[0].downloads.count(f"{REPO}/model.safetensors") == 2
    assert (snapshot_folder(REPO, "main", "model", cache) / "model.safetensors").read_bytes() == (
        model_folder / "model.safetensors"
    ).read_bytes()


def test_a_file_the_server_corrupts_is_one_error_naming_it(online, model_folder, tmp_path):
    from huggingface_hub import HfApi

    with recorded_hub(repos={f"models/{REPO}": model_folder}, corrupt=[f"{REPO}/tokenizer.json"]) as endpoint:
        entry = _entry(HfApi(endpoint=endpoint), _model_ref())
        with pytest.raises(FetchError, match=r"model prh-tests/tiny-encoder@main: 'tokenizer.json' does not match "
                                             r"its git hash [0-9a-f]{40}"):  # fmt: skip
            fetch(entry, tmp_path / "cache", endpoint=endpoint)


def test_a_dataset_fetches_the_splits_the_run_reads_and_jobs_load_them_offline(online, tmp_path, monkeypatch):
    """A dataset repo with a card naming train and test parquet files: a run reading train fetches train's
    file and the card, not test's; the dataset loader then reads the snapshot with no hub (HF_HUB_OFFLINE)."""
    import polars as pl
    from huggingface_hub import HfApi, constants

    from prh.data.hub import load_hf_table

    folder = tmp_path / "dataset"
    (folder / "data").mkdir(parents=True)
    train = pl.DataFrame({"text": ["a cat", "a dog", "a bird"], "label": [0, 1, 2]})
    train.write_parquet(folder / "data/train.parquet")
    pl.DataFrame({"text": ["a fish"], "label": [3]}).write_parquet(folder / "data/test.parquet")
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train.parquet\n"
        "  - split: test\n    path: data/test.parquet\n---\n# captions\n"
    )
    cache = tmp_path / "cache"
    ref = Reference("datasets[0] (dataset 'captions')", "dataset", "prh-tests/captions", "main", ("train",))
    with recorded_hub(repos={"datasets/prh-tests/captions": folder}) as endpoint:
        entry = _entry(HfApi(endpoint=endpoint), ref)
        assert sorted(entry["fetch"]) == ["README.md", "data/train.parquet"] and entry["splits"] == ["train", "test"]
        fetch(entry, cache, endpoint=endpoint)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    table = load_hf_table({"id": "prh-tests/captions", "revision": "main"}, "train", "dataset 'captions'")
    assert table["text"] == ["a cat", "a dog", "a bird"]


def test_an_unreachable_hub_stops_the_preflight_with_what_to_do(online):
    from huggingface_hub import HfApi

    with pytest.raises(PreflightError) as err:
        preflight_references([_model_ref()], api=HfApi(endpoint="http://127.0.0.1:9"), token="")
    message = str(err.value)
    assert "the hub (http://127.0.0.1:9) is unreachable (ConnectError), so 1 hub references cannot" in message
    assert "hub.offline: true" in message and "no model job has started" in message


def test_offline_checks_every_reference_in_the_cache_file_by_file(online, model_folder, tmp_path):
    """hub.offline: a cache that holds the repo passes and the report says where it looked; a damaged file and
    a repo not in the cache are each a problem; nothing asks the hub (its endpoint here answers nothing)."""
    from huggingface_hub import HfApi

    cache = tmp_path / "cache"
    with recorded_hub(repos={f"models/{REPO}": model_folder}) as endpoint:
        fetch(_entry(HfApi(endpoint=endpoint), _model_ref()), cache, endpoint=endpoint)
    hub = {"offline": True, "cache": str(cache)}
    dead = HfApi(endpoint="http://127.0.0.1:9")
    report = preflight_references([_model_ref()], api=dead, hub=hub)
    assert report["hub"] == f"cache: hub.offline is set; 1 hub references checked in the cache {cache}, file by file"
    assert report["references"][0]["fetch"]["model.safetensors"] == 300_000
    blob = (snapshot_folder(REPO, "main", "model", cache) / "config.json").resolve()
    blob.write_text(blob.read_text().replace("8", "9"))
    missing = Reference("models[1] (model 'other')", "model", "prh-tests/other", "main")
    problems = check([_model_ref(), missing], ".", dead, offline=True, cache=str(cache))["problems"]
    assert problems[0].startswith("models[0] (model 'tiny'): prh-tests/tiny-encoder in the cache: 'config.json' "
                                  "does not match its git hash")  # fmt: skip
    assert problems[1].startswith("models[1] (model 'other'): model prh-tests/other@main is not in the hub cache")
    assert len(problems) == 2


def test_a_report_checked_in_the_cache_is_checked_on_the_hub_again(online):
    """stale(): a report made from the cache, or an older version's skipped one, answers no more once the hub is
    to be asked (hub.offline unset)."""
    from prh.preflight import references_hash, stale

    refs = [_model_ref()]
    done = {"references_hash": references_hash(refs)}
    assert stale(done | {"hub": "cache: hub.offline is set; 1 hub references checked"}, refs)
    assert not stale(done | {"hub": "cache: hub.offline is set; 1 hub references checked"}, refs, offline=True)
    assert stale(done | {"hub": "skipped: the hub is unreachable (ConnectError); hub references not checked"}, refs)
    assert not stale(done | {"hub": "checked"}, refs)
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # the suite's own setting is untouched


@pytest.mark.workflow
def test_a_run_fetches_a_hub_model_once_and_its_model_jobs_never_ask_the_hub(local_bert, tmp_path):
    """A run whose language model is a hub id, served by the local hub: the fetch job downloads it into
    hub.cache; then, with the hub still answering and HF_HUB_OFFLINE unset in the caller's environment, the
    embedding job sends it no request at all and writes the features of the same weights read from a folder."""
    import subprocess
    import sys

    import zarr
    from conftest import REPO as WORKFLOW
    from conftest import tiny_config, write_config

    config = tiny_config()
    config["models"] = [
        {"name": "bert-hub", "modality": "language", "source": "huggingface", "id": "prh-tests/tiny-bert"},
        {"name": "bert-folder", "modality": "language", "source": "huggingface", "path": str(local_bert)},
    ]
    config["hub"] = {"cache": str(tmp_path / "hub-cache")}
    config["probes"] = None
    write_config(tmp_path, config)
    stores = [f"results/features/tiny/{m['name']}.zarr" for m in config["models"]]
    servers = []
    with recorded_hub(repos={"models/prh-tests/tiny-bert": local_bert}, server_out=servers) as endpoint:
        env = os.environ | {"HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "0", "HF_TOKEN": ""}

        def run(*targets):
            cmd = [sys.executable, "-m", "snakemake", "-s", str(WORKFLOW / "Snakefile"), "-d", str(tmp_path),
                   "--cores", "2", *targets]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            assert done.returncode == 0, done.stderr[-4000:]

        run("results/fetch/models/bert-hub.json")
        fetched = json.loads((tmp_path / "results/fetch/models/bert-hub.json").read_text())
        assert sorted(servers[0].downloads) == sorted(f"prh-tests/tiny-bert/{f}" for f in fetched["files"])
        assert fetched["snapshot"].startswith(str(tmp_path / "hub-cache"))
        asked = len(servers[0].requests)
        run(*stores)
        assert servers[0].requests[asked:] == []  # the model job read the cache only
    hub, folder = (zarr.open_group(str(tmp_path / s), mode="r") for s in stores)
    np.testing.assert_array_equal(hub["features"][:], folder["features"][:])


def test_places365_archives_are_fetched_by_torchvision_and_md5_checked(tmp_path, monkeypatch):
    """Places-365 in the fetch stage: torchvision's own download of the devkit and image archives (from a local
    server standing in for its authors', with this fixture's md5 sums), unpacked into the dataset's root; an
    archive whose md5 differs is an error, and nothing is left that the dataset job would read."""
    import tarfile

    from conftest import places365_fixture
    from file_server import file_server
    from torchvision.datasets import Places365

    from prh.io.fetch import fetch_places365

    source, served = tmp_path / "source", tmp_path / "served"
    places365_fixture(source)
    served.mkdir()
    with tarfile.open(served / "filelist_places365-standard.tar", "w") as tar:
        for name in ("categories_places365.txt", "places365_val.txt"):
            tar.add(source / name, name)
    with tarfile.open(served / "val_256.tar", "w") as tar:
        tar.add(source / "val_256", "val_256")

    def md5(path):
        return hashlib.md5(path.read_bytes()).hexdigest()

    with file_server(served) as (url, gets):
        monkeypatch.setattr(Places365, "_BASE_URL", url + "/")
        devkit = "filelist_places365-standard.tar"
        monkeypatch.setattr(Places365, "_DEVKIT_META", {"standard": (devkit, md5(served / devkit))})
        for meta, name in (("_CATEGORIES_META", "categories_places365.txt"), ("_FILE_LIST_META", "places365_val.txt")):
            entry = (name, md5(source / name))
            monkeypatch.setattr(Places365, meta, entry if meta == "_CATEGORIES_META" else {"val": entry})
        monkeypatch.setattr(Places365, "_IMAGES_META", {("val", True): ("val_256.tar", md5(served / "val_256.tar"))})
        manifest = fetch_places365({"root": str(tmp_path / "places"), "split": "val", "small": True})
        assert manifest["files"] == 20 and gets["val_256.tar"] >= 1
        assert (tmp_path / "places" / "places365_val.txt").read_text() == (source / "places365_val.txt").read_text()
        monkeypatch.setattr(Places365, "_IMAGES_META", {("val", True): ("val_256.tar", "0" * 32)})  # corrupted
        with pytest.raises(RuntimeError, match="corrupted"):
            fetch_places365({"root": str(tmp_path / "other"), "split": "val", "small": True})
        assert not (tmp_path / "other" / "val_256").exists()
