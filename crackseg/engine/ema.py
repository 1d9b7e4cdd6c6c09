"""Exponential moving average of model weights (evaluated and saved instead of the raw weights)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    """ema = decay * ema + (1 - decay) * weights after each optimizer step; buffers are copied.

    The decay ramps up as min(decay, (1 + n) / (10 + n)) so early averages are not dominated by the
    random initialisation.
    """

    def __init__(self, model: nn.Module, *, decay: float = 0.999):
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.updates = decay, 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for ema_v, v in zip(self.module.state_dict().values(), model.state_dict().values()):
            if ema_v.dtype.is_floating_point:
                ema_v.lerp_(v.detach(), 1 - d)
            else:
                ema_v.copy_(v)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict, updates: int) -> None:
        self.module.load_state_dict(state)
        self.updates = updates
