"""The engine: the only bridge from user objects (network, loss, optimizer) to the kernels.

Which path will my model take? :func:`build_plan` decides: *fused* when every
layer returns plan rows (:meth:`fastnn.layers.Layer.plan_rows`), the loss has a
plan code (:meth:`fastnn.losses.Loss.plan_loss`) and the backend has a plan
driver; otherwise *per-layer*, with the reason in ``Plan.reason``.
``Trainer.last_plan`` reports the choice of the last fit.
"""
from .guard import guarded
from .plan import Plan, build_plan, shard_rows
from .probe import GradientProbe
from ..kernels.threads import layer_threads
from .runners import fused_runner, layerwise_grad, layerwise_runner
from .sharded import MIN_SHARD_ROWS, choose_layer_shards, shard_blocker, sharded_runner  # issues 11, 12
from .split import Split, choose_split
from .split_probe import clear_probe_cache, probe_split

__all__ = ["Plan", "build_plan", "shard_rows", "guarded", "fused_runner", "layerwise_runner", "layerwise_grad",
           "layer_threads", "sharded_runner", "choose_layer_shards", "shard_blocker", "GradientProbe", "Split",
           "choose_split", "probe_split", "clear_probe_cache"]
