"""segmentation_models_pytorch peers as crackseg presets, so crackseg's own loop trains and scores
them exactly as it does ours (same data, crops, augmentation, loss, schedule, metrics).

    .venv-peers/bin/python benchmarks/peer_presets.py train --config CONFIG ...   # any crackseg command
    .venv-peers/bin/python benchmarks/model_search.py run NAME --config CONFIG --minutes 25 --peers

Registers `smp_unet_resnet18` (smp `Unet("resnet18")`, random init: no weights download here) in
crackseg's preset table, then runs the crackseg command line. Only for benchmarks: smp lives in
.venv-peers (`make peers`), never in crackseg's dependencies, and a checkpoint of a peer loads only
where this module has registered it.
"""

from __future__ import annotations

import sys
from functools import partial

import torch.nn.functional as F
from bench_models import smp_model
from torch import Tensor, nn

from crackseg.errors import CrackSegError
from crackseg.models.presets import PRESETS

PEERS = {"smp_unet_resnet18": ("Unet", "resnet18")}  # preset name: (smp architecture, encoder)


class AnySize(nn.Module):
    """An smp net at any H, W: zero-padded bottom/right to a multiple of 32 (its encoder's output
    stride) and cropped back, as crackseg's U-Net pads to 2**depth."""

    def __init__(self, net: nn.Module, multiple: int = 32):
        super().__init__()
        self.net, self.multiple = net, multiple

    def forward(self, images: Tensor) -> Tensor:
        """Shapes: images (B, C, H, W) -> logits (B, K, H, W)."""
        H, W = images.shape[-2:]
        m = self.multiple
        return self.net(F.pad(images, (0, -W % m, 0, -H % m)))[..., :H, :W]


def smp_peer(arch: str, encoder: str, *, num_classes: int = 2, image_size: int | None = None):
    """bench.py's smp `arch(encoder)` at any size; `image_size` accepted and ignored, as by our U-Net."""
    try:
        net = smp_model(arch, encoder, num_classes=num_classes)
    except ImportError as err:  # one line from the crackseg CLI, not a traceback
        raise CrackSegError(f"peer {arch}({encoder}) needs segmentation_models_pytorch ({err}): "
                            "run `make peers` and use .venv-peers/bin/python") from err  # fmt: skip
    return AnySize(net)


def register() -> None:
    """Add the peers to crackseg's presets (idempotent)."""
    for name, (arch, encoder) in PEERS.items():
        PRESETS.setdefault(name, partial(smp_peer, arch, encoder))


if __name__ == "__main__":
    register()
    from crackseg.cli import main

    sys.exit(main())
