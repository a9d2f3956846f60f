"""Preflight: every hub reference of a run resolved with huggingface_hub's own metadata calls, against a
recorded hub served over real HTTP (tests/hub_server.py), before any model job; one error names every
problem with its config key."""

from __future__ import annotations

import json
import re

import pytest
from conftest import planned_jobs, snakemake, tiny_config, write_config
from hub_server import FIXTURES, recorded_hub

from prh.config import validate_config
from prh.preflight import PreflightError, check, pin_config, preflight, references, split_names

GRANTED = "hf_fixture_accepted"  # a token whose holder accepted Gemma's licence (tests/fixtures/hub)


@pytest.fixture
def hub(monkeypatch):
    from huggingface_hub import HfApi, constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the suite runs offline; this hub is local
    with recorded_hub() as endpoint:
        yield HfApi(endpoint=endpoint)


def _paper_like(validate: bool = True, **changes) -> dict:
    """The tiny config with hub references of the paper preset's kinds, validated."""
    config = tiny_config()
    config["models"] += [
        {"name": "bloomz-560m", "modality": "language", "source": "huggingface", "id": "bigscience/bloomz-560m",
         "revision": "main"},
        {"name": "gemma-2b", "modality": "language", "source": "huggingface", "id": "google/gemma-2b",
         "revision": "main"},
        {"name": "vit-tiny", "modality": "vision", "source": "timm", "id": "vit_tiny_patch16_224.augreg_in21k"},
    ]  # fmt: skip
    config["probes"]["tasks"] += [
        {"name": "sun397", "kind": "vtab", "id": "clip-benchmark/wds_sun397", "revision": "main", "fit_split": "test"},
        {"name": "dtd", "kind": "vtab", "id": "clip-benchmark/wds_vtab-dtd", "revision": "main"},
    ]
    config["downstream"] = {
        "dataset": "tiny",
        "reference": "vit-test",
        "tasks": {
            "hellaswag": {"kind": "hellaswag", "id": "Rowan/hellaswag", "revision": "main", "split": "validation"}
        },
    }
    config["lm_score"] = {"corpus": "openwebtext", "max_bytes": 1000}
    images = {
        "kind": "huggingface",
        "id": "uoft-cs/cifar10",
        "revision": "main",
        "split": "train",
        "image_column": "img",
    }
    config["colour"] = {"images": images, "sets": {"few": ["red", "blue", "green", "yellow"]}}
    for mutate in changes.values():
        mutate(config)
    return validate_config(config) if validate else config


def test_a_good_run_resolves_commits_sizes_splits_and_columns(hub, tmp_path):
    report = preflight(_paper_like(), root=tmp_path, api=hub, token=GRANTED)
    assert report["hub"] == "checked" and report["problems"] == []
    entries = {e["key"]: e for e in report["references"]}
    bloomz = entries["models[4] (model 'bloomz-560m')"]
    assert re.fullmatch(r"[0-9a-f]{40}", bloomz["sha"])
    recorded = json.loads((FIXTURES / "models/bigscience/bloomz-560m.json").read_text())
    assert bloomz["sha"] == recorded["refs"]["main"]
    assert bloomz["weight_bytes"] == 1118459450  # the safetensors file only, not the duplicate .bin
    assert bloomz["parameters"] == 559214592
    gemma = entries["models[5] (model 'gemma-2b')"]
    assert gemma["gated"] == "manual" and gemma["weight_bytes"] == 4945242264 + 67121608  # not the GGUF
    vit = entries["models[6] (model 'vit-tiny')"]
    assert vit["hub_id"] == "timm/vit_tiny_patch16_224.augreg_in21k" and vit["weight_bytes"] == 39063204
    assert entries["probes.tasks[2] 'sun397'"]["splits"] == ["test"]
    assert entries["probes.tasks[3] 'dtd'"]["splits"] == ["train", "test"]
    assert entries["probes.tasks[3] 'dtd'"]["columns"] is None  # webdataset keys live inside the shards
    assert entries["downstream.tasks.hellaswag"]["splits"] == ["train", "test", "validation"]
    assert entries["lm_score.corpus_hub"]["sha"] == "c6680bb039f28c472e44d33acb240c3068b89a82"


def test_every_problem_is_named_at_once_with_its_config_key(hub, tmp_path):
    """A gated model without a token, a wrong revision, a timm id that does not exist, a missing split, a
    missing column, a missing data file and a missing local path: one error lists all seven."""

    def breaks(c):
        c["models"][4]["revision"] = "no-such-branch"
        c["models"].append({"name": "bad-net", "modality": "vision", "source": "timm", "id": "no_such_net"})
        c["models"].append({"name": "local", "modality": "language", "source": "huggingface", "path": "nowhere"})
        del c["probes"]["tasks"][2]["fit_split"]  # sun397 asks for its train split
        c["colour"]["images"]["image_column"] = "image"
        c["lm_score"]["corpus_hub"] = {"id": "Skylion007/openwebtext", "revision": "main",
                                       "data_files": ["plain_text/train-0000.parquet"]}  # fmt: skip

    with pytest.raises(PreflightError) as caught:
        preflight(_paper_like(breaks=breaks), root=tmp_path, api=hub, token="")
    message = str(caught.value)
    expected = [
        "models[4] (model 'bloomz-560m'): bigscience/bloomz-560m has no revision 'no-such-branch'",
        "models[5] (model 'gemma-2b'): google/gemma-2b is gated: accept its licence at "
        "https://huggingface.co/google/gemma-2b, then set HF_TOKEN (no token is set)",
        "models[7] (model 'bad-net'): 'no_such_net' is not a timm architecture",
        "models[8] (model 'local').path: 'nowhere' does not exist",
        "probes.tasks[2] 'sun397': clip-benchmark/wds_sun397 has no split 'train' (it has: test)",
        "colour.images: uoft-cs/cifar10 has no column 'image' (it has: img, label)",
        "lm_score.corpus_hub: Skylion007/openwebtext@main has no file 'plain_text/train-0000.parquet'",
    ]
    for line in expected:
        assert line in message
    assert message.count("\n  - ") == len(expected)


def test_a_token_without_access_is_told_apart_from_no_token(hub, tmp_path):
    config = _paper_like()
    problems = check(references(config), tmp_path, hub, token="hf_not_accepted")["problems"]
    assert problems == [
        "models[5] (model 'gemma-2b'): google/gemma-2b is gated and this token has no access: accept its licence "
        "at https://huggingface.co/google/gemma-2b"
    ]


def test_a_repo_that_does_not_exist(hub, tmp_path):
    config = _paper_like(typo=lambda c: c["models"][4].update(id="bigscience/bloomz-561m"))
    problems = check(references(config), tmp_path, hub, token=GRANTED)["problems"]
    assert problems == [
        "models[4] (model 'bloomz-560m'): model bigscience/bloomz-561m does not exist on the hub (or is private)"
    ]


def test_offline_checks_the_cache_and_still_checks_paths_and_timm(monkeypatch, tmp_path):
    """HF_HUB_OFFLINE: hub references are looked up in the cache (here empty: each one a problem naming it),
    never skipped; timm ids and local paths are checked as online."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    config = _paper_like(bad=lambda c: c["models"].append(
        {"name": "bad-net", "modality": "vision", "source": "timm", "id": "no_such_net"}))  # fmt: skip
    report = check(references(config), tmp_path, cache=str(tmp_path / "empty"))
    assert report["hub"] == (f"cache: HF_HUB_OFFLINE is set; 8 hub references checked in the cache "
                             f"{tmp_path / 'empty'}, file by file")  # fmt: skip
    assert "models[7] (model 'bad-net'): 'no_such_net' is not a timm architecture" in report["problems"]
    not_cached = [p for p in report["problems"] if "is not in the hub cache" in p]
    assert len(not_cached) == 8 and not_cached[0].startswith(
        "models[4] (model 'bloomz-560m'): model bigscience/bloomz-560m@main is not in the hub cache"
    )


def test_pinning_writes_the_resolved_commits_into_the_users_config(hub, tmp_path):
    import copy

    raw = _paper_like(validate=False)
    config = validate_config(copy.deepcopy(raw))
    report = preflight(config, root=tmp_path, api=hub, token=GRANTED)
    pinned = pin_config(raw, config, report)
    shas = {e["key"]: e.get("sha") for e in report["references"]}
    assert pinned["models"][4]["revision"] == shas["models[4] (model 'bloomz-560m')"] != "main"
    assert pinned["probes"]["tasks"][2]["revision"] == shas["probes.tasks[2] 'sun397'"]
    assert (
        pinned["lm_score"]["corpus_hub"]["revision"] == "c6680bb039f28c472e44d33acb240c3068b89a82"
    )  # a default, written out
    assert "revision" not in pinned["models"][0]  # a random-init timm model has nothing to pin
    again = preflight(validate_config(pinned), root=tmp_path, api=hub, token=GRANTED)
    assert {e["key"]: e.get("sha") for e in again["references"]} == shas


def test_split_names_are_those_datasets_finds(hub):
    """Without card metadata the splits come from the file names by datasets' own patterns: clip-benchmark's
    webdataset layout (test/0.tar) gives sun397 a test split only."""
    info = hub.dataset_info("clip-benchmark/wds_sun397", revision="main", files_metadata=True)
    assert split_names(info) == ["test"]
    info = hub.dataset_info("Skylion007/openwebtext", revision="main", files_metadata=True)
    assert split_names(info) == ["train"]


def test_preflight_runs_first_and_a_bad_reference_stops_every_model_job(tmp_path):
    """In a run, preflight is a job every hub-reading job waits for; a timm id that does not exist fails it, so
    no dataset, embedding or language-model job starts, and the log names the model."""
    config = tiny_config()
    config["models"].append({"name": "bad-net", "modality": "vision", "source": "timm", "id": "no_such_net",
                             "pretrained": False})  # fmt: skip
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "--cores", "1", check=False)
    assert result.returncode != 0
    log = (tmp_path / "logs" / "preflight.log").read_text()
    assert "models[4] (model 'bad-net'): 'no_such_net' is not a timm architecture" in log
    assert not (tmp_path / "results" / "features").exists() and not (tmp_path / "data").exists()
    first = [rule for rule, _ in planned_jobs(tmp_path)]
    assert "preflight" in first


def test_a_report_is_checked_again_when_its_references_change_or_the_hub_comes_back(hub, monkeypatch, tmp_path):
    """renewed_report, written as a run's onstart writes it: nothing for an unchanged report; a new model is
    checked and written; a report made under HF_HUB_OFFLINE is checked against the hub once that is unset; a problem
    raises and leaves the last good report."""
    from huggingface_hub import constants

    from prh.preflight import references_hash, renewed_report, write_report

    def refresh(path, refs, api):  # rules/common.smk: checked while planning, written when the run starts
        report = renewed_report(path, refs, api=api)
        if report is not None:
            write_report(path, report)
        return report is not None

    path = tmp_path / "preflight.json"
    config = _paper_like()
    refs = references(config)
    assert not refresh(path, refs, api=hub)  # no report yet: the preflight job makes the first
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    write_report(path, check(refs, tmp_path) | {"references_hash": references_hash(refs)})
    assert not refresh(path, refs, api=hub)  # still offline: nothing to do
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", GRANTED)
    monkeypatch.chdir(tmp_path)
    assert refresh(path, refs, api=hub) and json.loads(path.read_text())["hub"] == "checked"
    assert not refresh(path, refs, api=hub)
    good = path.read_text()
    bad = references(_paper_like(typo=lambda c: c["models"][4].update(revision="no-such-branch")))
    with pytest.raises(PreflightError, match="has no revision 'no-such-branch'"):
        refresh(path, bad, api=hub)
    assert path.read_text() == good


def test_a_run_whose_hub_cannot_be_reached_stops_before_any_job(tmp_path):
    """`snakemake preflight` (the preflight alone) with a hub model and no hub: the job fails naming the
    unreachable hub and how to go on; no report is written, so no later run passes it unchecked."""
    import os
    import subprocess
    import sys

    from conftest import REPO

    config = tiny_config()
    config["models"].append({"name": "bert-hub", "modality": "language", "source": "huggingface",
                             "id": "prh-tests/tiny-bert"})  # fmt: skip
    write_config(tmp_path, config)
    env = os.environ | {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0"}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--cores", "1",
           "preflight"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert done.returncode != 0
    log = (tmp_path / "logs" / "preflight.log").read_text()
    assert "the hub (http://127.0.0.1:9) is unreachable (ConnectError), so 1 hub references cannot be checked" in log
    assert "set hub.offline: true" in log
    assert not (tmp_path / "results" / "preflight.json").exists() and not (tmp_path / "data").exists()
