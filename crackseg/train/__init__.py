"""Training runs: `train(config)` and `train_from(yaml, flags)` write a run folder with config,
checkpoints (last/best), metrics CSV, TensorBoard events, curves and sample overlays.

build.py  device, data (with its preflight), model, optimisation; guards.py  refusals before the
first batch (crop, class weights, memory); state.py  resume and checkpoints; run.py  the epochs.
"""

from crackseg.train.run import train, train_from

__all__ = ["train", "train_from"]
