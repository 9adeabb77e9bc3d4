"""Data-parallel training on PyTorch's own stack: torch.distributed + DDP.

``torchrun --nproc-per-node N -m acseg_core train ...`` (or ``acseg-core train
--nproc N``, which spawns the same N processes on a free local port) sets
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``;
:func:`setup` reads them and joins the process group (NCCL on CUDA, gloo on the
CPU). Without them everything here is a no-op and training runs as one process.

What the training loop gets from :class:`Context`:

* **Data.** ``TrainConfig.batch`` is the *global* batch. Step ``s`` uses crops
  ``s·B … s·B+B−1`` of the seeded :class:`~acseg_core.training.crops.CropDataset`, as in
  a single process; rank ``r`` of ``W`` takes every W-th of them, starting at
  ``r`` (:meth:`Context.crop_indices`). Crops and orderings are pure functions of
  ``(seed, index/step)`` and no global RNG is drawn in the loop, so a resume on
  any number of ranks (``B`` divisible by it) continues exactly.
* **Model.** :meth:`Context.wrap` synchronises BatchNorm (``nn.SyncBatchNorm``
  on GPUs; on the CPU, where PyTorch's SyncBatchNorm kernels do not exist,
  :class:`CollectiveBatchNorm2d` computes the same global statistics with
  PyTorch's differentiable ``all_reduce``) and wraps the network in
  ``DistributedDataParallel``, which all-reduces (averages) the gradients.
* **Loss semantics.** Each rank computes the IIC loss on its ``B/W`` crops; DDP
  averages the gradients, so the optimised objective is the *mean over ranks of
  the per-rank MI losses* (each rank's joint distribution pools its own crops'
  pixels and displacements). With BatchNorm synchronised, this equals a single
  process that computes the loss separately on the W sub-batches ``x[r::W]`` of
  the same global batch and averages them — exactly what the test checks. It is
  not the MI of one joint over all ``B`` crops (that needs an all-reduce of the
  joint inside the loss); with 200 px crops each joint already pools millions
  of pixel pairs, so the difference is small. The reported loss is the mean
  over ranks (:meth:`Context.average`), and it is non-finite on every rank when
  it is on any, so all ranks skip a bad step together.
* **Control.** Only rank 0 (:attr:`Context.is_main`) writes logs and checkpoints;
  :meth:`Context.should_stop` all-reduces the cancel flag every step, so a cancel
  on any rank stops all ranks at the same step.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from acseg_core.device import select_device, usable_cores
from acseg_core.errors import AcsegError
from acseg_core.jobs import handling

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """True unless this is a non-zero rank of a distributed launch (before setup too)."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass
class Context:
    """This process's place in the job; ``world_size == 1`` for a plain run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device | None = None
    owns_group: bool = False  # we initialised the process group, so we tear it down

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def backend(self) -> str | None:
        return dist.get_backend() if self.distributed else None

    def local_batch(self, batch: int) -> int:
        """Crops per rank per step; the global batch must divide evenly."""
        if batch % self.world_size:
            raise AcsegError(
                f"the batch ({batch} crops, global) must be divisible by the number of "
                f"processes ({self.world_size})"
            )
        return batch // self.world_size

    def crop_indices(self, start_step: int, total_steps: int, batch: int) -> range:
        """This rank's crop numbers for steps ``start_step …``, in loader order.

        Consecutive ``batch // world_size`` entries form one step's local batch.
        """
        self.local_batch(batch)
        return range(start_step * batch + self.rank, total_steps * batch, self.world_size)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """Sync BatchNorm and DDP; a plain run gets the model back unchanged."""
        if not self.distributed:
            return model
        return DistributedViews(model, self.device or torch.device("cpu"))

    def should_stop(self, cancel: Any) -> bool:
        """Whether any rank was cancelled (one tiny all-reduce per step)."""
        local = bool(cancel is not None and cancel)
        if not self.distributed:
            return local
        flag = torch.tensor([1.0 if local else 0.0], device=self._collective_device())
        dist.all_reduce(flag)
        stop = bool(flag.item() > 0)
        if stop and cancel is not None and not local:
            cancel.cancel()  # this rank reports "cancelled" like the one that asked
        return stop

    def average(self, value: torch.Tensor) -> torch.Tensor:
        """Mean of a scalar over ranks (non-finite everywhere if it is on any rank)."""
        value = value.detach().float().reshape(1)
        if not self.distributed:
            return value[0]
        value = value.to(self._collective_device())
        dist.all_reduce(value)
        return value[0] / self.world_size

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False

    def _collective_device(self) -> torch.device:
        # NCCL reduces CUDA tensors only; gloo takes CPU tensors
        if self.device is not None and self.device.type == "cuda":
            return self.device
        return torch.device("cpu")


def setup(device_name: str = "auto") -> Context:
    """Join the process group described by the environment (torchrun's variables).

    Returns a single-process :class:`Context` when ``WORLD_SIZE`` is absent or 1.
    Each rank takes GPU ``LOCAL_RANK`` on CUDA (NCCL), or ``cores / local ranks``
    threads on the CPU (gloo).
    """
    world = world_size_from_env()
    if world <= 1:
        return Context(device=select_device(device_name))
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    device = select_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        cores = usable_cores()
        torch.set_num_threads(max(1, cores // local_world))
        backend = "gloo"
    else:
        raise AcsegError(f"distributed training runs on CUDA or the CPU, not {device.type}")
    owns = False
    if not dist.is_initialized():
        kwargs: dict[str, Any] = {}
        if backend == "nccl":
            kwargs["device_id"] = device  # binds the communicator eagerly, one GPU per rank
        dist.init_process_group(backend, rank=rank, world_size=world, **kwargs)
        owns = True
    return Context(rank, world, local_rank, local_world, device, owns)


class NullLog:
    """The run log of ranks other than 0: they train but write nothing."""

    def write(self, event: str, **fields: Any) -> None:
        return None


# -- the model wrapper ---------------------------------------------------------------


class CollectiveBatchNorm2d(torch.nn.BatchNorm2d):
    """BatchNorm2d whose training statistics span all ranks, on any device.

    ``nn.SyncBatchNorm`` is CUDA-only; this computes the same global mean and
    variance from per-rank sums reduced with ``torch.distributed.nn.all_reduce``,
    which is differentiable (its backward all-reduces the gradient), so the
    gradients equal those of one BatchNorm over the whole global batch. State-dict
    keys are BatchNorm2d's, so checkpoints load into the plain network.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        channels = x.shape[1]
        stats_dtype = torch.promote_types(x.dtype, torch.float32)
        xs = x.to(stats_dtype)
        count = torch.full((1,), xs.numel() / channels, dtype=stats_dtype, device=x.device)
        local = torch.cat([xs.sum(dim=(0, 2, 3)), (xs * xs).sum(dim=(0, 2, 3)), count])
        total = _differentiable_all_reduce(local)
        n = total[-1]
        mean = total[:channels] / n
        var = (total[channels : 2 * channels] / n - mean * mean).clamp_min(0.0)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = (
                    1.0 / float(self.num_batches_tracked)
                    if self.momentum is None
                    else self.momentum
                )
                unbiased = var * (n / (n - 1).clamp_min(1.0))
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        shape = (1, channels, 1, 1)
        y = (xs - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def _differentiable_all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over ranks whose backward sums the gradients over ranks (PyTorch's own)."""
    try:
        from torch.distributed.nn.functional import all_reduce
    except ImportError:  # removed in favour of the functional collectives
        import torch.distributed._functional_collectives as funcol

        return funcol.wait_tensor(funcol.all_reduce(tensor, "sum", dist.group.WORLD))
    with warnings.catch_warnings():  # deprecated for the functional collectives (2.13)
        warnings.simplefilter("ignore", FutureWarning)
        return all_reduce(tensor)


def sync_batchnorm(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Replace BatchNorm layers by synchronised ones (in place where possible)."""
    if device.type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in list(model.named_children()):
        if type(child) is torch.nn.BatchNorm2d:
            synced = CollectiveBatchNorm2d(
                child.num_features, child.eps, child.momentum, child.affine,
                child.track_running_stats, device=device,
            )  # fmt: skip
            synced.load_state_dict(child.state_dict())
            if child.affine:  # keep the very Parameter objects (an optimiser may hold them)
                synced.weight, synced.bias = child.weight, child.bias
            synced.train(child.training)
            setattr(model, name, synced)
        else:
            sync_batchnorm(child, device)
    return model


class _ViewsForward(torch.nn.Module):
    """Routes DDP's forward to ``forward_views`` (DDP hooks only ``forward``)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(
        self,
        x: torch.Tensor,
        orderings: Sequence[int],
        with_overcluster: bool,
        second: torch.Tensor | None = None,
        bank: torch.Tensor | None = None,
        second_bank: torch.Tensor | None = None,
    ) -> Any:
        return self.net.forward_views(
            x, orderings, with_overcluster=with_overcluster, second=second, bank=bank,
            second_bank=second_bank,
        )  # fmt: skip


class DistributedViews(torch.nn.Module):
    """The network with synchronised BatchNorm behind ``DistributedDataParallel``.

    ``module`` is the bare network (what checkpoints save and ``parameters()``
    lists); ``forward_views`` goes through DDP, so gradients are averaged.
    """

    def __init__(self, net: torch.nn.Module, device: torch.device) -> None:
        super().__init__()
        from torch.nn.parallel import DistributedDataParallel

        self.module = sync_batchnorm(net, device)
        ids = [device.index] if device.type == "cuda" else None
        # not registered as a child: parameters() and state_dict() stay the network's
        object.__setattr__(
            self, "_ddp", DistributedDataParallel(_ViewsForward(self.module), device_ids=ids)
        )

    def forward_views(
        self,
        x: torch.Tensor,
        orderings: Sequence[int],
        with_overcluster: bool = False,
        second: torch.Tensor | None = None,
        bank: torch.Tensor | None = None,
        second_bank: torch.Tensor | None = None,
    ) -> Any:
        ddp = self.__dict__["_ddp"]
        ddp.train(self.training)
        return ddp(x, list(orderings), with_overcluster, second, bank, second_bank)

    def forward(self, *args: Any, **kwargs: Any) -> Any:  # inference: the bare network
        return self.module(*args, **kwargs)


# -- launching -----------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on this host right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch(entry: Callable[[Any], int], args: Any, nproc: int) -> int:
    """Run ``entry(args)`` in ``nproc`` spawned ranks on this host; return an exit code.

    What ``torchrun --standalone --nproc-per-node N`` does, without a separate
    agent: the ranks get torchrun's environment variables and a free local port.
    The first Ctrl+C reaches every rank (same process group), each of which stops
    after agreeing on the step and saving; here it only waits. A second Ctrl+C
    terminates the ranks.
    """
    import torch.multiprocessing as mp

    # a rank that fails has said why in one line; not also "Terminating process ..."
    logging.getLogger("torch.multiprocessing.spawn").setLevel(logging.ERROR)
    port = free_port()
    context = mp.start_processes(
        _rank_main, args=(entry, args, nproc, port), nprocs=nproc, join=False,
        start_method="spawn",
    )  # fmt: skip
    with _parent_ignores_first_interrupt(context):
        try:
            while not context.join():
                pass
        except mp.ProcessExitedException as exc:
            return exc.exit_code if exc.exit_code and exc.exit_code > 0 else 1
        except mp.ProcessRaisedException as exc:
            last = [line for line in str(exc).strip().splitlines() if line.strip()]
            print(f"acseg-core train: error in a training process: {last[-1]}", file=sys.stderr)
            return 1
    return 0


def _rank_main(
    local_rank: int, entry: Callable[[Any], int], args: Any, nproc: int, port: int
) -> None:
    os.environ.update(
        RANK=str(local_rank),
        LOCAL_RANK=str(local_rank),
        WORLD_SIZE=str(nproc),
        LOCAL_WORLD_SIZE=str(nproc),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    try:
        code = entry(args)
    except AcsegError as exc:
        if local_rank == 0:
            print(f"acseg-core train: error: {exc}", file=sys.stderr)
        sys.exit(1)
    if code:
        sys.exit(code)


@contextlib.contextmanager
def _parent_ignores_first_interrupt(context: Any) -> Iterator[None]:
    presses = [0]

    def on_interrupt(signum: int, frame: Any) -> None:
        presses[0] += 1
        if presses[0] > 1:
            for process in context.processes:
                if process.is_alive():
                    process.terminate()
            raise KeyboardInterrupt

    with handling(signal.SIGINT, on_interrupt):
        yield


__all__ = [
    "CollectiveBatchNorm2d",
    "Context",
    "DistributedViews",
    "NullLog",
    "free_port",
    "is_main_process",
    "launch",
    "setup",
    "sync_batchnorm",
    "world_size_from_env",
]
