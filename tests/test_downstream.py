"""Downstream scoring (Fig. 4): multiple-choice items by log-likelihood on a tiny causal LM, against a
hand computation, and the shapes task generated from known scenes."""

import numpy as np
import polars as pl
import pytest
import torch

from prh.data.shapes import caption_scene, sample_scene
from prh.experiments.downstream.tasks import (
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
from prh.experiments.ladder.language import train_tokenizer


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
    """lm-evaluation-harness's convention, by hand: the text as the tokenizer encodes it (this byte-level BPE
    adds no BOS), the first token unscored, each ending token scored given everything before it."""
    model, tokenizer = tiny_lm
    context, endings = "Two small red circles above the", [" square.", " squares.", " star on a plain background."]
    ours, lengths = score_endings(model, tokenizer, context, endings)
    for ending, value in zip(endings, ours):  # one sequence at a time, token by token
        ids = tokenizer(context + ending)["input_ids"]
        first = len(tokenizer(context)["input_ids"])
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        expected = sum(float(torch.log_softmax(logits[t - 1], -1)[ids[t]]) for t in range(first, len(ids)))
        assert value == pytest.approx(expected, abs=1e-4)
    assert lengths.tolist() == [7, 8, 27]  # characters of each choice, the delimiter (a space) excluded
    mixed = [("A large", " blue star."), (context, endings[2]), ("Three", " small crosses.")]  # padded together
    alone = [score_pairs(model, tokenizer, [pair])[0] for pair in mixed]
    np.testing.assert_allclose(score_pairs(model, tokenizer, mixed), alone, atol=1e-4)
    # beyond the model's positions the context is cut from the left: the last `limit` + 1 tokens, less the last
    ids = tokenizer(context + endings[2])["input_ids"]
    n_ending = len(ids) - len(tokenizer(context)["input_ids"])
    limit = n_ending + 2  # two context tokens kept
    kept = ids[-(limit + 1) :]
    with torch.no_grad():
        logits = model(torch.tensor([kept[:-1]])).logits[0]
    expected = sum(float(torch.log_softmax(logits[t - 1], -1)[kept[t]]) for t in range(len(kept) - n_ending, len(kept)))
    assert score_pairs(model, tokenizer, [(context, endings[2])], limit)[0] == pytest.approx(expected, abs=1e-4)
    table = pl.DataFrame({"context": [context], "endings": [endings], "label": [int(np.argmax(ours / lengths))]})
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
    """HellaSwag's first validation row: its context as lm-evaluation-harness builds it (activity label, ctx_a,
    ctx_b capitalised), not the raw ``ctx``; a table without those columns is one clear error."""
    import datasets

    rows = {"activity_label": ["Roof shingle removal"], "ctx_a": ["A man is sitting on a roof."], "ctx_b": ["he"],
            "ctx": ["A man is sitting on a roof. he"], "endings": [["is using wrap.", "is ripping level tiles off.",
            "is holding a rubik's cube.", "starts pulling up roofing."]], "label": ["3"], "split": ["val"]}  # fmt: skip
    datasets.Dataset.from_dict(rows).save_to_disk(tmp_path / "hellaswag")
    table = build_task({"kind": "hellaswag", "path": str(tmp_path / "hellaswag"), "split": "validation"}, "hs")
    assert table.row(0) == (
        "Roof shingle removal: A man is sitting on a roof. He",
        [" " + e for e in rows["endings"][0]],
        3,
    )
    datasets.Dataset.from_dict({k: rows[k] for k in ("ctx", "endings", "label")}).save_to_disk(tmp_path / "old")
    with pytest.raises(ValueError, match="hs: the HellaSwag table has no column 'activity_label', 'ctx_a', 'ctx_b'"):
        build_task({"kind": "hellaswag", "path": str(tmp_path / "old"), "split": "validation"}, "hs")


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


# HellaSwag-shaped rows (fixture text): an ActivityNet item, and WikiHow items with [title]/[step] tags,
# double spaces and a lowercase ctx_b, the cases lm-evaluation-harness's preprocessing touches.
HELLASWAG_ROWS = [
    {"activity_label": "Washing face", "ctx_a": "A man stands at a sink and splashes water.", "ctx_b": "he",
     "endings": ["reaches for a towel.", "rides a horse across the sink.", "paints the  mirror blue.",
                 "sings to the faucet."], "label": 0},
    {"activity_label": "Home and Garden", "ctx_a": "[header] How to water a cactus [title] Check the soil.",
     "ctx_b": "[step] push a finger into the soil.", "endings": ["[substeps] If it is dry, water it.",
     "Water it every hour [title] forever.", "The cactus [step] sings.", "Dig it up and throw it away."],
     "label": 0},
    {"activity_label": "Playing guitar", "ctx_a": "A girl sits on a chair holding a guitar.", "ctx_b": "she",
     "endings": ["strums the strings slowly.", "eats the guitar.", "throws the chair  at the wall.",
                 "flies out of the window."], "label": 0},
    {"activity_label": "Cooking", "ctx_a": "[header] How to boil an egg [title] Fill a pot with water.",
     "ctx_b": "", "endings": ["[step] Place the egg in the pot and heat it.", "Paint the egg red.",
     "Throw the pot [title] away.", "Sit on the egg."], "label": 0},
]  # fmt: skip


def test_hellaswag_items_are_lm_eval_process_docs():
    """Context and endings equal lm-evaluation-harness's own process_docs (lm-eval 0.4.13) on the same rows."""
    import datasets
    from lm_eval.tasks.hellaswag.utils import process_docs

    from prh.experiments.downstream.tasks import hellaswag_items

    theirs = process_docs(datasets.Dataset.from_list(HELLASWAG_ROWS))
    ours = hellaswag_items(HELLASWAG_ROWS)
    assert [i["context"] for i in ours] == theirs["query"]
    assert [[e[1:] for e in i["endings"]] for i in ours] == theirs["choices"]  # ours carry the delimiter
    assert [i["endings"][0][0] for i in ours] == [" "] * len(ours)
    assert [i["label"] for i in ours] == theirs["gold"]
    assert (
        ours[1]["context"] == "Home and Garden: How to water a cactus. Check the soil. push a finger into the soil."
    )  # capitalize() meets "["


def _rows_with_every_label(n: int = 40) -> list[dict]:
    """``n`` HellaSwag-shaped rows whose label takes each of the four positions in turn (labels 0–3, ``n / 4``
    each; fixture labels, not the sensible ending), each row's context made its own by a counter."""
    rows = []
    for i in range(n):
        base = HELLASWAG_ROWS[i % len(HELLASWAG_ROWS)]
        rows.append(base | {"ctx_a": f"{base['ctx_a']} Take {i}.", "label": (i // len(HELLASWAG_ROWS)) % 4})
    return rows


def _with_bos(tokenizer):
    """The tokenizer made to add a BOS token before every text, as LLaMA's, Mistral's and Gemma's do."""
    import copy

    from tokenizers.processors import TemplateProcessing

    bos = copy.deepcopy(tokenizer)
    bos.bos_token = "<|endoftext|>"
    bos_id = bos.convert_tokens_to_ids("<|endoftext|>")
    bos.backend_tokenizer.post_processor = TemplateProcessing(
        single="<|endoftext|> $A", pair="<|endoftext|> $A $B", special_tokens=[("<|endoftext|>", bos_id)]
    )
    assert bos("a red circle")["input_ids"][0] == bos_id != tokenizer("a red circle")["input_ids"][0]
    return bos


@pytest.mark.parametrize("adds_bos", [False, True], ids=["no-bos", "bos"])
def test_loglikelihoods_and_accuracies_equal_lm_eval(tiny_lm, tmp_path, adds_bos):
    """lm-evaluation-harness's HFLM and its HellaSwag task definition (a local copy reading these rows) on the
    same tiny GPT-2, with a tokenizer that adds no BOS (GPT-2's) and one that does (LLaMA's way), over 40 items
    whose gold endings take each of the four positions: the same per-ending log-likelihoods (to 1e-5), acc and
    acc_norm. The model's 64 positions make the longer items cut their context from the left in both."""
    import json

    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from prh.experiments.downstream.tasks import hellaswag_items

    model, tokenizer = tiny_lm
    tokenizer = _with_bos(tokenizer) if adds_bos else tokenizer
    folder = tmp_path / "tiny-gpt2"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    rows = _rows_with_every_label(40)
    assert sorted({r["label"] for r in rows}) == [0, 1, 2, 3]
    data = tmp_path / "hellaswag.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "utils.py").write_text("from lm_eval.tasks.hellaswag.utils import process_docs  # noqa: F401\n")
    (tasks / "hellaswag_local.yaml").write_text(
        "task: hellaswag_local\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    validation: {data}\n"
        "output_type: multiple_choice\nvalidation_split: validation\ntest_split: null\n"
        "process_docs: !function utils.process_docs\n"  # the rest as lm_eval/tasks/hellaswag/hellaswag.yaml
        'doc_to_text: "{{query}}"\ndoc_to_target: "{{label}}"\ndoc_to_choice: "choices"\n'
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
        "  - metric: acc_norm\n    aggregation: mean\n    higher_is_better: true\n"
    )
    lm = HFLM(pretrained=str(folder), device="cpu", batch_size=16)
    manager = TaskManager(include_path=str(tasks))
    out = lm_eval.simple_evaluate(model=lm, tasks=["hellaswag_local"], task_manager=manager, log_samples=True)
    samples = sorted(out["samples"]["hellaswag_local"], key=lambda s: s["doc_id"])
    theirs = np.array([[float(r[0][0]) for r in s["resps"]] for s in samples])
    items = hellaswag_items(rows)
    limit = model.config.n_positions
    ours = np.array([score_pairs(model, tokenizer, [(i["context"], e) for e in i["endings"]], limit) for i in items])
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    longest = max(len(tokenizer(i["context"] + i["endings"][0])["input_ids"]) for i in items)
    assert longest > limit  # the left cut is exercised
    scores = evaluate(model, tokenizer, pl.DataFrame(items), limit=limit)
    metrics = out["results"]["hellaswag_local"]
    assert scores["items"] == 40
    assert scores["acc"] == pytest.approx(metrics["acc,none"], abs=1e-12)
    assert scores["acc_norm"] == pytest.approx(metrics["acc_norm,none"], abs=1e-12)
    # Neither score is 0 or 1, nor are the picks one position: a wrong label or a shifted choice would show.
    assert len(set(np.argmax(ours, axis=1).tolist())) > 1
    assert 0 < scores["acc"] < 1 and 0 < scores["acc_norm"] < 1
