"""The model zoo, built from first principles: attention, Transformer block, ViT, Segmenter, U-Net."""

from crackseg.models.attention import MultiHeadAttention, attention
from crackseg.models.contracts import Decoder, Encoder
from crackseg.models.conv_stem import ConvStem
from crackseg.models.decoders import LinearDecoder, MaskTransformer, SkipDecoder
from crackseg.models.layers import Block, DropPath, Mlp
from crackseg.models.patch_embed import PatchEmbed
from crackseg.models.posembed import resample_pos_embed, sincos_1d, sincos_2d
from crackseg.models.presets import build_model, list_models
from crackseg.models.pretrained import LoadReport, load_vit_weights, to_timm_state_dict
from crackseg.models.segmenter import Segmenter
from crackseg.models.transunet import TransUNet
from crackseg.models.unet import (
    CNNBlock,
    CNNBlocks,
    ResidualCNNBlocks,
    UNet,
    valid_output_size,
    valid_sizes,
)
from crackseg.models.vit import VisionTransformer

__all__ = [
    "Block", "CNNBlock", "CNNBlocks", "ConvStem", "Decoder", "DropPath", "Encoder", "LinearDecoder",
    "LoadReport", "MaskTransformer", "Mlp", "MultiHeadAttention", "PatchEmbed",
    "ResidualCNNBlocks", "Segmenter", "SkipDecoder", "TransUNet", "UNet", "VisionTransformer",
    "attention", "build_model", "list_models", "load_vit_weights", "resample_pos_embed",
    "sincos_1d", "sincos_2d", "to_timm_state_dict", "valid_output_size", "valid_sizes",
]  # fmt: skip
