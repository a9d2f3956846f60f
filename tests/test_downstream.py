"""Downstream scoring (Fig. 4): multiple-choice items by log-likelihood on a tiny causal LM, against a
hand computation, and the shapes task generated from known scenes."""

import numpy as np
import polars as pl
import pytest
import torch

from prh.datasets import caption_scene, sample_scene
from prh.downstream import (
    DOWNSTREAM_STREAM,
    anchor_items,
    build_task,
    check_task,
    evaluate,
    published_scores,
    read_published,
    score_endings,
    score_pairs,
)
from prh.train import train_tokenizer


@pytest.fixture(scope="module")
def tiny_lm():
    from transformers import GPT2Config, GPT2LMHeadModel

    captions = [caption_scene(sample_scene(0, i)) for i in range(200)]
    tokenizer = train_tokenizer(captions, 300)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=16, n_layer=1, n_head=2,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)  # fmt: skip
    return GPT2LMHeadModel(config).eval(), tokenizer


def test_an_item_scores_as_a_hand_computed_log_likelihood(tiny_lm):
    model, tokenizer = tiny_lm
    context, endings = "Two small red circles above the", [" square.", " squares.", " star on a plain background."]
    ours, nbytes = score_endings(model, tokenizer, context, endings)
    start = tokenizer.bos_token_id
    for ending, value in zip(endings, ours):  # one sequence at a time, token by token
        ids = [start] + tokenizer(context + ending, add_special_tokens=False)["input_ids"]
        first = 1 + len(tokenizer(context, add_special_tokens=False)["input_ids"])
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        expected = sum(float(torch.log_softmax(logits[t - 1], -1)[ids[t]]) for t in range(first, len(ids)))
        assert value == pytest.approx(expected, abs=1e-4)
    assert nbytes.tolist() == [8, 9, 28]
    mixed = [("A large", " blue star."), (context, endings[2]), ("Three", " small crosses.")]  # padded together
    alone = [score_pairs(model, tokenizer, [pair])[0] for pair in mixed]
    np.testing.assert_allclose(score_pairs(model, tokenizer, mixed), alone, atol=1e-4)
    # beyond the model's positions the context is cut from the left: the last `limit` tokens are scored
    ids = [tokenizer.bos_token_id] + tokenizer(context + endings[2], add_special_tokens=False)["input_ids"]
    n_ending = len(ids) - 1 - len(tokenizer(context, add_special_tokens=False)["input_ids"])
    limit = n_ending + 2  # two context tokens kept
    assert limit < len(ids)
    with torch.no_grad():
        logits = model(torch.tensor([ids[-limit:]])).logits[0]
    kept = ids[-limit:]
    expected = sum(float(torch.log_softmax(logits[t - 1], -1)[kept[t]]) for t in range(limit - n_ending, limit))
    assert score_pairs(model, tokenizer, [(context, endings[2])], limit)[0] == pytest.approx(expected, abs=1e-4)
    table = pl.DataFrame({"context": [context], "endings": [endings], "label": [int(np.argmax(ours / nbytes))]})
    assert evaluate(model, tokenizer, table) | {"acc": None} == {"items": 1, "acc": None, "acc_norm": 1.0,
                                                                  "chance": pytest.approx(1 / 3)}  # fmt: skip


def test_shapes_items_come_from_known_scenes():
    items = anchor_items(20, seed=0)
    assert len(items) == 20 and [i["scene"] for i in items] == sorted(i["scene"] for i in items)
    for item in items:
        scene = sample_scene(0, item["scene"], DOWNSTREAM_STREAM)
        caption = caption_scene(scene)
        assert item["context"] + item["endings"][item["label"]] == caption  # the true ending completes it
        largest = max(scene.objects, key=lambda o: o.radius)
        assert item["endings"][item["label"]].split()[0].startswith(largest.shape[:4])  # the anchor's shape
        assert len(set(item["endings"])) == 4 and item["context"].endswith(" the")
    skipped = [i for i in range(items[0]["scene"]) if len({(o.size, o.colour, o.shape) for o in
               sample_scene(0, i, DOWNSTREAM_STREAM).objects}) >= 3]  # fmt: skip
    assert skipped == []  # every scene before the first item has fewer than three groups


def test_a_task_table_missing_a_column_is_one_clear_error(tmp_path):
    pl.DataFrame({"context": ["a"], "endings": [["b", "c"]]}).write_parquet(tmp_path / "t.parquet")
    with pytest.raises(ValueError, match="has no column 'label'"):
        build_task({"kind": "table", "path": str(tmp_path / "t.parquet")}, "downstream.tasks.mine")
    with pytest.raises(ValueError, match="x: the task table has no column 'context', 'label'"):
        check_task(pl.DataFrame({"endings": [["b"]]}), "x")


def test_hellaswag_rows_from_a_local_save_to_disk_folder(tmp_path):
    import datasets

    rows = {"ctx": ["A man is sitting on a roof. he"], "endings": [["is using wrap.", "is ripping level tiles off.",
            "is holding a rubik's cube.", "starts pulling up roofing."]], "label": ["3"], "split": ["val"]}  # fmt: skip
    datasets.Dataset.from_dict(rows).save_to_disk(tmp_path / "hellaswag")
    table = build_task({"kind": "hellaswag", "path": str(tmp_path / "hellaswag"), "split": "validation"}, "hs")
    assert table.row(0) == (rows["ctx"][0], [" " + e for e in rows["endings"][0]], 3)


PUBLISHED = """# GSM8K, version 2 (a comment line)
model_id,accuracy,setting,source,url
org/big-lm,0.512,"5-shot, exact match",A. Author et al. (2024) Table 3,https://example.org/paper
small-local,0.031,8-shot maj@1,B. Author (2023),https://example.org/b
org/not-in-config,0.9,5-shot,C. Author (2022),https://example.org/c
"""


def test_published_scores_are_matched_by_hub_id_or_name_and_carry_their_citation(tmp_path):
    import hashlib

    (tmp_path / "gsm8k.csv").write_text(PUBLISHED)
    table, sha = read_published(tmp_path / "gsm8k.csv", "downstream.tasks.gsm8k")
    assert sha == hashlib.sha256(PUBLISHED.encode()).hexdigest()
    models = [{"name": "big", "id": "org/big-lm"}, {"name": "small-local", "path": "/x"},
              {"name": "other", "id": "o/x"}]  # fmt: skip
    scores = published_scores(table, sha, models, {"big": 7_000_000, "small-local": 100, "other": 5}, "gsm8k")
    rows = {r["model"]: r for r in scores.to_dicts()}
    assert rows["big"]["accuracy"] == 0.512 and rows["big"]["setting"] == "5-shot, exact match"
    assert rows["big"]["source"] == "A. Author et al. (2024) Table 3" and rows["big"]["parameters"] == 7_000_000
    assert rows["small-local"]["accuracy"] == 0.031 and rows["small-local"]["applicable"]
    assert not rows["other"]["applicable"] and rows["other"]["accuracy"] is None  # no number is made up
    assert set(scores["table_sha256"]) == {sha}


def test_a_bad_published_table_names_every_problem_at_once(tmp_path):
    (tmp_path / "a.csv").write_text("model_id,accuracy,source,url\nm,0.5,X,u\n")
    with pytest.raises(ValueError, match=r"t \(.*a.csv\): the published-score table has no column 'setting'"):
        read_published(tmp_path / "a.csv", "t")
    (tmp_path / "b.csv").write_text("model_id,accuracy,setting,source,url\nm,51.2,5-shot,X,u\nm,0.5,5-shot,,u\n")
    with pytest.raises(ValueError) as err:
        read_published(tmp_path / "b.csv", "t")
    assert "accuracy outside [0, 1] (a fraction, not a percentage) for m" in str(err.value)
    assert "listed twice: m" in str(err.value) and "no source for m" in str(err.value)
    (tmp_path / "c.csv").write_text("model_id,accuracy,setting,source,url\nm,51.2%,5-shot,X,u\n")
    with pytest.raises(ValueError, match=r"t \(.*c.csv\): the published-score table cannot be read"):
        read_published(tmp_path / "c.csv", "t")
    with pytest.raises(ValueError, match="does not exist"):
        read_published(tmp_path / "missing.csv", "t")


def test_the_paper_presets_gsm8k_table_is_well_formed():
    """The shipped table reads without error; every row it holds names a model of the paper preset."""
    import yaml

    table, _ = read_published("configs/published/gsm8k.csv", "configs/paper.yaml")
    ids = {m.get("id") for m in yaml.safe_load(open("configs/paper.yaml"))["models"]}
    assert set(table["model_id"]) <= ids
    assert all(url.startswith("https://") for url in table["url"]) and table["setting"].str.len_chars().min() > 0
