"""What a model looks at: ViT/Segmenter attention maps and rollout, or gradient saliency for U-Net.

from crackseg.explain import explain
expl = explain(load_model("best.ckpt"), read_image("wall.jpg"))
expl.rollout          # (gh, gw) tensor; expl.upsample(expl.rollout) -> (H, W)
png = expl.grid_png(image)
"""

from crackseg.explain.core import Explanation, attention_rollout, encoder_of, explain
from crackseg.explain.render import explain_file, explanation_grid, write_explanation
from crackseg.explain.saliency import gradient_saliency

__all__ = [
    "Explanation", "attention_rollout", "encoder_of", "explain", "explain_file",
    "explanation_grid", "gradient_saliency", "write_explanation",
]  # fmt: skip
