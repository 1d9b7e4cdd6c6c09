"""What a model looks at: ViT/Segmenter attention maps and rollout, or gradient saliency for U-Net.

from crackseg.explain import explain, explanation_grid
expl = explain(load_model("best.ckpt"), read_image("wall.jpg"))
expl.rollout          # (gh, gw) tensor; expl.upsample(expl.rollout) -> (H, W)
png = explanation_grid(expl, image)

Layout (imports point one way): types (Explanation) <- saliency <- core (explain) ; types <- render
(pictures) ; core + render <- files (explain_file, write_explanation).
"""

from crackseg.explain.core import attention_rollout, encoder_of, explain
from crackseg.explain.files import explain_file, write_explanation
from crackseg.explain.render import explanation_grid
from crackseg.explain.saliency import gradient_saliency
from crackseg.explain.types import Explanation

__all__ = [
    "Explanation", "attention_rollout", "encoder_of", "explain", "explain_file",
    "explanation_grid", "gradient_saliency", "write_explanation",
]  # fmt: skip
