"""CLIPScore: how well an image matches its task's prompt, with an open_clip model.

Score (Hessel et al., 2021, "CLIPScore"): ``score = clip(weight * max(cos(image, prompt), 0), 0, 1)``
with ``weight = 2.5`` by default, where ``cos`` is the cosine between the normalised image and text
embeddings. With real CLIP models matching image/prompt pairs have cosines of about 0.25-0.40, so the
standard weight of 2.5 spreads them over roughly [0.6, 1]. ``passed`` is ``score >= threshold``
(default :data:`DEFAULT_THRESHOLD`, i.e. a cosine of 0.3; tune it for your model). ``details`` holds
the raw ``cosine``, the ``prompt`` and a one-entry ``checks`` list in the layout of the checklist
scorers (``{"check": "clip", "item": None, "ok", "message"}``) plus ``failed``.

As a :class:`~genagent_env.scorers.base.PairwiseComparator`, the image with the higher score wins;
scores closer than ``tie_margin`` are a tie.

Real checkpoints are never downloaded here (the environment runs offline); fetch them once, e.g.::

    huggingface-cli download timm/vit_large_patch14_clip_224.openai     # ViT-L-14 / openai
    scorer = CLIPScorer(model_name="ViT-L-14", pretrained="openai", device="cuda")

or pass a local checkpoint file (``pretrained="/path/open_clip_model.safetensors"``), an open_clip
``local-dir:/path`` model name, or an already built ``model`` with its ``preprocess`` and ``tokenizer``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from genagent_env.extras import needs
from genagent_env.scorers.base import PairwiseComparator, Score, Scorer

with needs("scorers", "the CLIP scorer"):
    import open_clip
    import torch

if TYPE_CHECKING:
    from PIL.Image import Image

#: CLIPScore's rescaling weight.
CLIPSCORE_WEIGHT = 2.5
#: Default pass mark on the rescaled score (a cosine of 0.3 at weight 2.5).
DEFAULT_THRESHOLD = 0.75


def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def _cached_tag_file(model_name: str, tag: str, cache_dir: str | None) -> str:
    """The local file of a pretrained tag's weights, or a ``FileNotFoundError`` saying what to download."""
    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    hub, url = cfg.get("hf_hub", ""), cfg.get("url", "")
    if hub:
        from huggingface_hub import hf_hub_download

        repo, filename = os.path.split(hub)
        names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        for name in names:
            try:
                return hf_hub_download(repo, name, cache_dir=cache_dir, local_files_only=True)
            except Exception:  # not in the cache under this name
                continue
        raise FileNotFoundError(
            f"the weights of open_clip {model_name}/{tag} are not in the Hugging Face cache and nothing is "
            f"downloaded here; fetch them once with `huggingface-cli download {repo}` (or pass "
            f"pretrained=<local checkpoint file>)"
        )
    if url:
        path = os.path.join(cache_dir or os.path.expanduser("~/.cache/clip"), os.path.basename(url))
        if os.path.isfile(path):
            return path
        raise FileNotFoundError(
            f"the weights of open_clip {model_name}/{tag} are not cached at {path} and nothing is downloaded "
            f"here; download {url} to that path (or pass pretrained=<local checkpoint file>)"
        )
    raise FileNotFoundError(f"open_clip has no download location for {model_name}/{tag}")


def load_open_clip(
    model_name: str, pretrained: str | None, *, device: str = "cpu", cache_dir: str | None = None
) -> tuple[torch.nn.Module, Any, Any]:
    """``(model, preprocess, tokenizer)`` from open_clip, in eval mode, never downloading.

    Args:
        model_name: An open_clip model name (``"ViT-L-14"``, a config registered with
            ``open_clip.add_model_config``) or ``"local-dir:/path"`` (config and weights in a folder).
        pretrained: A pretrained tag (``"openai"``, ``"laion2b_s32b_b82k"``...) whose weights must
            already be cached, a checkpoint file (``.safetensors`` is read without unpickling;
            other files with ``torch.load(weights_only=True)``), or ``None`` for random weights.
        device: Where the model goes.
        cache_dir: Where cached tag weights are looked up (default: the usual caches).

    Raises:
        FileNotFoundError: when a tag's weights are not cached, with what to download.
        ValueError: for a tag open_clip does not know for this model.
    """
    kwargs: dict[str, Any] = {}
    if pretrained and not os.path.isfile(pretrained) and not model_name.startswith(("local-dir:", "hf-hub:")):
        name = model_name.replace("/", "-")
        if not open_clip.get_pretrained_cfg(name, pretrained):
            raise ValueError(
                f"{pretrained!r} is neither a file nor a pretrained tag of open_clip {model_name!r}; "
                f"its tags: {open_clip.list_pretrained_tags_by_model(name)}"
            )
        cfg = open_clip.get_pretrained_cfg(name, pretrained)
        # Load the cached file directly, with the tag's own settings, so open_clip never goes online.
        kwargs = {"force_quick_gelu": bool(cfg.get("quick_gelu", False)), "image_mean": cfg.get("mean"),
                  "image_std": cfg.get("std"), "image_interpolation": cfg.get("interpolation"),
                  "image_resize_mode": cfg.get("resize_mode")}
        pretrained = _cached_tag_file(name, pretrained, cache_dir)
    if model_name.startswith("hf-hub:"):
        from huggingface_hub import snapshot_download

        repo = model_name[len("hf-hub:"):]
        try:
            model_name = "local-dir:" + snapshot_download(repo, cache_dir=cache_dir, local_files_only=True)
        except Exception as error:
            raise FileNotFoundError(
                f"{repo} is not in the Hugging Face cache and nothing is downloaded here; "
                f"fetch it once with `huggingface-cli download {repo}`"
            ) from error
    model, _, preprocess = open_clip.create_model_and_transforms(
        model_name, pretrained=pretrained, device=device, cache_dir=cache_dir, weights_only=True,
        **{k: v for k, v in kwargs.items() if v is not None},
    )
    return model.eval(), preprocess, open_clip.get_tokenizer(model_name, cache_dir=cache_dir)


class OpenCLIPModel:
    """An open_clip model with its preprocess and tokenizer: batched, normalised embeddings."""

    def __init__(self, model: torch.nn.Module, preprocess: Any, tokenizer: Any, device: str, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.model: Any = model.to(device).eval()  # open_clip's CLIP: encode_image, encode_text
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = batch_size

    @torch.inference_mode()
    def embed_images(self, images: Sequence[Image]) -> torch.Tensor:
        """Unit-norm image embeddings, ``len(images) x D`` (float32, on the CPU)."""
        out = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            pixels = torch.stack([self.preprocess(image.convert("RGB")) for image in chunk]).to(self.device)
            out.append(torch.nn.functional.normalize(self.model.encode_image(pixels).float(), dim=-1).cpu())
        return torch.cat(out) if out else torch.zeros(0, 0)

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Unit-norm text embeddings, ``len(texts) x D`` (float32, on the CPU)."""
        out = []
        for start in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(list(texts[start : start + self.batch_size])).to(self.device)
            out.append(torch.nn.functional.normalize(self.model.encode_text(tokens).float(), dim=-1).cpu())
        return torch.cat(out) if out else torch.zeros(0, 0)


class CLIPScorer(Scorer, PairwiseComparator):
    """CLIPScore of each image against its task's prompt (see the module docstring).

    Args:
        model_name: open_clip model name (default ``"ViT-L-14"``), ignored when ``model`` is given.
        pretrained: Tag with cached weights (default ``"openai"``) or a checkpoint file.
        model, preprocess, tokenizer: An already built open_clip model and its transforms; all three
            together, instead of ``model_name`` / ``pretrained``.
        device: ``"cuda"``, ``"cpu"``...; default: a GPU when there is one.
        batch_size: Images (and prompts) per forward pass.
        threshold: Pass mark on the score.
        weight: CLIPScore's weight on the cosine.
        tie_margin: Score differences up to this are a tie in :meth:`compare`.
        cache_dir: Where cached weights are looked up.
    """

    name = "clip"

    def __init__(
        self,
        *,
        model_name: str = "ViT-L-14",
        pretrained: str | None = "openai",
        model: torch.nn.Module | None = None,
        preprocess: Any = None,
        tokenizer: Any = None,
        device: str | None = None,
        batch_size: int = 32,
        threshold: float = DEFAULT_THRESHOLD,
        weight: float = CLIPSCORE_WEIGHT,
        tie_margin: float = 0.0,
        cache_dir: str | None = None,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
        if weight <= 0 or tie_margin < 0:
            raise ValueError("weight must be positive and tie_margin non-negative")
        device = device or default_device()
        if model is None:
            if preprocess is not None or tokenizer is not None:
                raise ValueError("pass preprocess and tokenizer only together with model")
            model, preprocess, tokenizer = load_open_clip(model_name, pretrained, device=device, cache_dir=cache_dir)
        elif preprocess is None or tokenizer is None:
            raise ValueError("a model passed directly needs its preprocess and tokenizer too")
        self.clip = OpenCLIPModel(model, preprocess, tokenizer, device, batch_size)
        self.threshold = float(threshold)
        self.weight = float(weight)
        self.tie_margin = float(tie_margin)

    def cosines(self, images: Sequence[Image], prompts: Sequence[str]) -> list[float]:
        """Cosine between ``images[i]`` and ``prompts[i]`` for every i (each distinct prompt embedded once)."""
        unique = list(dict.fromkeys(prompts))
        text = self.clip.embed_texts(unique)
        image = self.clip.embed_images(images)
        rows = torch.tensor([unique.index(p) for p in prompts], dtype=torch.long)
        return (image * text[rows]).sum(-1).tolist() if len(prompts) else []

    def score(self, images: Sequence[Image], tasks: Sequence[Mapping[str, Any]]) -> list[Score]:
        if len(images) != len(tasks):
            raise ValueError(f"got {len(images)} images for {len(tasks)} tasks")
        prompts = [str(task["prompt"]) for task in tasks]
        scores = []
        for prompt, cosine in zip(prompts, self.cosines(images, prompts)):
            value = min(1.0, self.weight * max(cosine, 0.0))
            passed = value >= self.threshold
            relation = "at least" if passed else "below"
            message = f"CLIPScore {value:.3f} (cosine {cosine:.3f}) is {relation} the pass mark {self.threshold:.3f}"
            check = {"check": "clip", "item": None, "ok": passed, "message": message}
            scores.append(Score(passed=passed, score=value, details={
                "checks": [check], "failed": [] if passed else [message], "cosine": float(cosine), "prompt": prompt,
            }))
        return scores

    def compare(
        self, tasks: Sequence[Mapping[str, Any]], first: Sequence[Image], second: Sequence[Image]
    ) -> list[int]:
        if not len(tasks) == len(first) == len(second):
            raise ValueError("compare needs as many tasks as first and second images")
        scores = self.score([*first, *second], [*tasks, *tasks])
        n = len(first)
        out = []
        for a, b in zip(scores[:n], scores[n:]):
            difference = b.score - a.score
            out.append(1 if difference > self.tie_margin else -1 if difference < -self.tie_margin else 0)
        return out

    def close(self) -> None:
        self.clip.model.to("cpu")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
