"""The models `bench.py` times: crackseg presets and the bundled model, and the peers people would
otherwise use (timm ViTs, segmentation-models-pytorch), each paired with the peer it is judged by.

Every entry builds a random-init model for a square input size. Two kinds: "segmentation" maps
images (B, 3, H, W) to logits (B, 2, H, W); "encoder" maps them to tokens (B, T, D)
(`forward_features`, timm's name and ours). Peers are imported only when built, so the bench runs
without them (they live in .venv-peers, see `make peers`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

import crackseg
from crackseg.weights import default_model

NUM_CLASSES = 2  # background, crack


@dataclass(frozen=True)
class Entry:
    """One benchmarked model: `build(image_size)` gives it in float32, random init."""

    name: str
    side: str  # "ours" | "peer"
    kind: str  # "segmentation" | "encoder"
    build: Callable[[int], nn.Module]
    peer: str | None = None  # ours: the peer entry its ratio is taken against
    channels_last: bool = False  # run in NHWC memory format (the bundled model, as predict runs it)
    note: str = ""


class Features(nn.Module):
    """A ViT's `forward_features` as its forward: images (B, C, H, W) -> tokens (B, T, D)."""

    def __init__(self, vit: nn.Module):
        super().__init__()
        self.vit = vit

    def forward(self, images: Tensor) -> Tensor:
        return self.vit.forward_features(images)


class TimmLinearSegmenter(nn.Module):
    """timm ViT + the head of our `LinearDecoder` Segmenter: drop the class token, Linear D -> K
    per patch token, bilinear upsampling to the input size (H, W must be multiples of the patch)."""

    def __init__(self, vit: nn.Module, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.vit, self.patch_size = vit, vit.patch_embed.patch_size[0]
        self.head = nn.Linear(vit.embed_dim, num_classes)

    def forward(self, images: Tensor) -> Tensor:
        """Shapes: images (B, C, H, W) -> logits (B, K, H, W)."""
        H, W = images.shape[-2:]
        tokens = self.vit.forward_features(images)[:, self.vit.num_prefix_tokens :]  # (B, N, D)
        gh, gw = H // self.patch_size, W // self.patch_size
        logits = rearrange(self.head(tokens), "b (gh gw) k -> b k gh gw", gh=gh, gw=gw)
        return F.interpolate(logits, size=(H, W), mode="bilinear", align_corners=False)


def ours(name: str, image_size: int) -> nn.Module:
    model = crackseg.build_model(name, image_size=image_size)
    return Features(model) if name.startswith("vit_") else model


def bundled(image_size: int) -> nn.Module:
    """The default bundled model (trained weights, float32); it is size-agnostic."""
    return crackseg.load_model()


def timm_vit(timm_name: str, image_size: int, *, linear_head: bool, **kw) -> nn.Module:
    import timm

    vit = timm.create_model(timm_name, pretrained=False, num_classes=0, img_size=image_size, **kw)
    return TimmLinearSegmenter(vit) if linear_head else Features(vit)


def smp_model(
    arch: str, encoder: str, image_size: int | None = None, *, num_classes: int = NUM_CLASSES
) -> nn.Module:
    """smp `arch(encoder)`, random init (no weights download); any size that is a multiple of 32."""
    import segmentation_models_pytorch as smp

    return getattr(smp, arch)(encoder, encoder_weights=None, classes=num_classes)


def _peers() -> list[Entry]:
    peers = []
    for size in ("tiny", "small"):
        for patch in (16, 8):
            # timm has no vit_tiny_patch8_224: tiny/16 with patch_size=8 is the same net
            timm_name, kw = f"vit_{size}_patch{patch}_224", {}
            if (size, patch) == ("tiny", 8):
                timm_name, kw = "vit_tiny_patch16_224", {"patch_size": 8}
            label = f"timm {timm_name}" + (" (patch 8)" if kw else "")
            peers.append(Entry(label, "peer", "encoder",
                               partial(timm_vit, timm_name, linear_head=False, **kw)))  # fmt: skip
            # drop_path 0.1 as our Segmenter presets train with
            build = partial(timm_vit, timm_name, linear_head=True, drop_path_rate=0.1, **kw)
            peers.append(Entry(f"{label} + linear", "peer", "segmentation", build))
    for arch, encoder in [("Unet", "resnet18"), ("Unet", "resnet34"), ("Segformer", "mit_b0"),
                          ("DeepLabV3Plus", "resnet18")]:  # fmt: skip
        peers.append(Entry(f"smp {arch}({encoder})", "peer", "segmentation",
                           partial(smp_model, arch, encoder)))  # fmt: skip
    return peers


SMP_UNET18 = "smp Unet(resnet18)"
BUNDLED = f"bundled ({default_model().name})"  # what `crackseg.load_model()` loads


def _ours() -> list[Entry]:
    entries = [Entry(BUNDLED, "ours", "segmentation", bundled,
                     peer=SMP_UNET18, channels_last=True,
                     note="trained weights, channels_last as `crackseg predict` runs it")]  # fmt: skip
    for name in ["unet_small", "unet_res_small", "unet_cnn16_small", "unet_vit_small", "unet"]:
        entries.append(Entry(name, "ours", "segmentation", partial(ours, name), peer=SMP_UNET18))
    for size in ("tiny", "small"):
        for patch in (16, 8):
            timm_name = f"timm vit_{size}_patch{patch}_224"
            if (size, patch) == ("tiny", 8):
                timm_name = "timm vit_tiny_patch16_224 (patch 8)"
            vit, seg = f"vit_{size}_patch{patch}", f"segmenter_vit_{size}_patch{patch}_linear"
            entries.append(Entry(vit, "ours", "encoder", partial(ours, vit), peer=timm_name))
            entries.append(Entry(seg, "ours", "segmentation", partial(ours, seg),
                                 peer=f"{timm_name} + linear"))  # fmt: skip
    for name in ["segmenter_vit_tiny_patch16_mask", "segmenter_vit_tiny_convstem8_linear",
                 "segmenter_vit_tiny_convstem8_skip"]:  # fmt: skip
        entries.append(Entry(name, "ours", "segmentation", partial(ours, name),
                             peer="timm vit_tiny_patch16_224 (patch 8) + linear"
                             if "convstem8" in name else "timm vit_tiny_patch16_224 + linear"))  # fmt: skip
    return entries


ENTRIES: dict[str, Entry] = {e.name: e for e in _ours() + _peers()}
# the default selection leaves out (name them with --models, or --all): the patch-8 ViT-Small pair
# (250 GFLOPs an image: its training steps alone take minutes on 2 cores) and the patch-8 ViT-Tiny
# encoders (the patch-8 Segmenter pair times the same encoder plus a Linear)
OPTIONAL = {"vit_small_patch8", "segmenter_vit_small_patch8_linear", "timm vit_small_patch8_224",
            "timm vit_small_patch8_224 + linear", "vit_tiny_patch8",
            "timm vit_tiny_patch16_224 (patch 8)"}  # fmt: skip
DEFAULT = [n for n in ENTRIES if n not in OPTIONAL]
# timed at every batch: the pairs the targets judge (ViT-Small as its Segmenter only);
# the others at the smallest batch unless --all-batches (batch 8 of all would double the run)
TARGET_PAIRS = [BUNDLED, "unet_small", SMP_UNET18,
                "vit_tiny_patch16", "timm vit_tiny_patch16_224",
                "segmenter_vit_tiny_patch16_linear", "timm vit_tiny_patch16_224 + linear",
                "segmenter_vit_small_patch16_linear", "timm vit_small_patch16_224 + linear"]  # fmt: skip
# --quick: one pair per target
QUICK = [BUNDLED, "unet_small", "vit_tiny_patch16",
         "segmenter_vit_tiny_patch16_linear", SMP_UNET18, "timm vit_tiny_patch16_224",
         "timm vit_tiny_patch16_224 + linear"]  # fmt: skip


def peers_available() -> str | None:
    """None when timm and segmentation_models_pytorch import, else why not."""
    try:
        import segmentation_models_pytorch  # noqa: F401
        import timm  # noqa: F401
    except ImportError as err:
        return f"not installed ({err.name}); `make peers` creates .venv-peers with them"
    return None


def versions() -> dict[str, str]:
    out = {"torch": torch.__version__, "crackseg": crackseg.__version__}
    for module in ("timm", "segmentation_models_pytorch", "einops", "numpy"):
        try:
            out[module] = __import__(module).__version__
        except ImportError:
            out[module] = "not installed"
    return out
