"""Model presets: a plain dict from name to builder, `build_model(name, **overrides)`."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from torch import nn

from crackseg.errors import CrackSegError
from crackseg.models.decoders import LinearDecoder, MaskTransformer, SkipDecoder
from crackseg.models.pretrained import load_vit_weights
from crackseg.models.segmenter import Segmenter
from crackseg.models.transunet import TransUNet
from crackseg.models.unet import UNet
from crackseg.models.vit import VisionTransformer

# timm's dimensions: (embed_dim, depth, num_heads)
VIT_SIZES = {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12)}


def vit(size: str, patch_size: int, **kw) -> VisionTransformer:
    embed_dim, depth, num_heads = VIT_SIZES[size]
    args = dict(image_size=224, patch_size=patch_size, embed_dim=embed_dim, depth=depth,
                num_heads=num_heads, mlp_ratio=4.0, qkv_bias=True, num_classes=0)  # fmt: skip
    return VisionTransformer(**{**args, **kw})


def segmenter(
    size: str,
    patch_size: int,
    decoder: str,
    *,
    num_classes: int = 2,
    image_size: int = 416,
    drop_path_rate: float = 0.1,
    decoder_depth: int = 2,
    decoder_heads: int | None = None,
    decoder_drop_rate: float = 0.1,
    **encoder_kw,
) -> Segmenter:
    """Segmenter with a ViT encoder (`encoder_kw` override its dimensions, e.g. stem="conv") and a
    linear, mask (the official recipe: 2 decoder blocks, heads = D // 64, dropout 0.1) or skip
    decoder (progressive upsampling with the conv stem's maps; needs stem="conv")."""
    encoder = vit(size, patch_size, image_size=image_size, drop_path_rate=drop_path_rate,
                  **encoder_kw)  # fmt: skip
    D = encoder.embed_dim
    if decoder == "linear":
        head = LinearDecoder(embed_dim=D, num_classes=num_classes)
    elif decoder == "skip":
        head = SkipDecoder(
            embed_dim=D, num_classes=num_classes, skip_channels=encoder.skip_channels
        )
    else:
        head = MaskTransformer(embed_dim=D, num_classes=num_classes, depth=decoder_depth,
                               num_heads=decoder_heads, drop_rate=decoder_drop_rate)  # fmt: skip
    return Segmenter(encoder, head, num_classes=num_classes)


def unet(*, base_channels: int = 64, image_size: int | None = None, **kw) -> UNet:
    """U-Net; `image_size` is accepted and ignored (convolutions work at any size), so every
    preset takes the training size the same way."""
    return UNet(base_channels=base_channels, **kw)


def transunet(*, image_size: int = 416, **kw) -> TransUNet:
    """U-Net conv stages + Transformer blocks at 1/2**depth + U-Net decoder (`TransUNet`)."""
    return TransUNet(image_size=image_size, **kw)


PRESETS: dict[str, Callable[..., nn.Module]] = {}
for _size in VIT_SIZES:
    for _patch in (16, 8):
        PRESETS[f"vit_{_size}_patch{_patch}"] = partial(vit, _size, _patch)
        for _dec in ("linear", "mask"):
            PRESETS[f"segmenter_vit_{_size}_patch{_patch}_{_dec}"] = partial(
                segmenter, _size, _patch, _dec
            )
PRESETS["unet"] = partial(unet, base_channels=64)
PRESETS["unet_small"] = partial(unet, base_channels=16)
PRESETS["unet_res_small"] = partial(unet, base_channels=16, depth=4, residual=True)
# the hybrid and its ablation: the same net (base 16, 1/16 bottleneck) with and without the blocks
PRESETS["unet_vit_small"] = partial(transunet, base_channels=16, depth=4, transformer_depth=4,
                                    embed_dim=192, num_heads=4)  # fmt: skip
PRESETS["unet_cnn16_small"] = partial(transunet, base_channels=16, depth=4, transformer_depth=0)
# thin cracks with a Segmenter: patch8_linear (exists) -> overlapping conv stem -> mask or skip decoder
for _dec in ("linear", "mask", "skip"):
    PRESETS[f"segmenter_vit_tiny_convstem8_{_dec}"] = partial(
        segmenter, "tiny", 8, _dec, stem="conv", stem_channels=16
    )


def list_models() -> list[str]:
    """All preset names, sorted."""
    return sorted(PRESETS)


def build_model(name: str, *, pretrained: str | Path | None = None, **overrides) -> nn.Module:
    """Build a preset; `overrides` replace its keyword arguments (e.g. depth=2, num_classes=3).

    Every preset accepts `image_size` (the training size): ViT-based ones size their position
    grid by it, size-agnostic ones (U-Net) ignore it.

    `pretrained` is a timm ViT state dict (.safetensors/.pth) loaded into the ViT or the Segmenter's
    encoder. The name and overrides are kept on the model (`model.preset`) so checkpoints can rebuild it.
    """
    if name not in PRESETS:
        raise CrackSegError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    try:
        model = PRESETS[name](**overrides)
    except TypeError as err:
        raise CrackSegError(f"model {name!r}: bad override ({err})") from err
    except ValueError as err:
        raise CrackSegError(f"model {name!r}: {err}") from err
    if pretrained is not None:
        encoder = model.encoder if isinstance(model, Segmenter) else model
        if not isinstance(encoder, VisionTransformer):
            raise CrackSegError(f"model {name!r} has no ViT encoder to load {pretrained} into")
        load_vit_weights(encoder, pretrained)
    model.preset = {"name": name, "overrides": dict(overrides)}
    return model
