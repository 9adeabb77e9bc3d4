"""DDP training on 2 gloo CPU ranks: same weights on both ranks, the loss of a single
process with the same global batch, cancel from rank 0, resume on another rank count.

One 2-rank run (spawned, ~10–20 s here) serves every check: rank 0 cancels after
step 2 of 3; both ranks must stop there with identical weights and the losses of
the reference; then a single process resumes the run to step 3 and must land on
the reference's weights.

The reference (:func:`reference_training`) spells out the semantics DDP implements
(see :mod:`acseg_core.training.distributed`): the same crops in the same global batch, one
BatchNorm over the whole batch (synchronised), and the loss = mean over the W
rank sub-batches ``x[r::W]`` of each sub-batch's MI loss.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from acseg_core.jobs import CancelToken
from acseg_core.model.checkpoint import config_of, load_checkpoint
from acseg_core.model.readouts import ReadOut
from acseg_core.presets import preset
from acseg_core.training.config import TrainConfig
from acseg_core.training.crops import CropDataset
from acseg_core.training.dataset import scan_inputs
from acseg_core.training.distributed import CollectiveBatchNorm2d, Context, launch
from acseg_core.training.run_log import read_log
from tests.core.synthetic import make_regions_image

STEPS, CANCEL_AFTER, BATCH, WORLD = 3, 2, 4, 2


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ddp_data")
    for i in range(2):
        make_regions_image(folder / f"img{i}.tif", size=(64, 64), bands=3, seed=i)
    return folder


def config(data: Path, out: Path) -> TrainConfig:
    return TrainConfig(
        inputs=(str(data),),
        out_dir=str(out),
        model=preset(
            "cpu-small", clusters=3, overclusters=5, blocks=2, base_width=8,
            readout=ReadOut("head")
        ),  # the reference loop below has no read-out fit
        steps=STEPS,
        steps_per_epoch=100,
        crop=32,
        batch=BATCH,
        lr=1e-3,
        displacement=2,
        device="cpu",
        workers=0,
        seed=0,
    )


def rank_entry(job: tuple[TrainConfig, Path]) -> int:
    """Runs in each spawned rank: train, record losses and every rank's weights."""
    import acseg_core.training.loop as train_mod
    import acseg_core.training.state as state_mod

    cfg, results = job
    rank = int(os.environ["RANK"])
    original_save = state_mod.save_checkpoint_file

    def save_and_capture(run: Any, model: torch.nn.Module, *args: Any, **kwargs: Any) -> None:
        net = getattr(model, "module", model)
        torch.save(net.state_dict(), results / f"rank{rank}_step{run.step}.pt")
        original_save(run, model, *args, **kwargs)

    state_mod.save_checkpoint_file = save_and_capture
    token = CancelToken()
    losses: dict[int, float] = {}
    job_gen = train_mod.train(cfg, token)
    while True:
        try:
            progress = next(job_gen)
        except StopIteration as stop:
            result = stop.value
            break
        metrics = progress.metrics
        if metrics.get("phase") == "train" and metrics.get("loss") is not None:
            losses[metrics["step"]] = metrics["loss"]
            if rank == 0 and metrics["step"] == CANCEL_AFTER:
                token.cancel()  # rank 0 only: rank 1 must learn it from the collective
    report = {"losses": losses, "step": result.step, "cancelled": result.cancelled}
    (results / f"rank{rank}.json").write_text(json.dumps(report))
    return 0


def reference_training(cfg: TrainConfig, model_cfg: Any, worlds: list[int]) -> tuple:
    """Single process: step ``s`` splits the global batch into ``worlds[s]`` sub-batches."""
    from acseg_core.model.loss import ac_loss
    from acseg_core.model.nn import build_model, draw_orderings
    from acseg_core.training.step import step_generator

    dataset = CropDataset(scan_inputs(cfg.inputs, crop=cfg.crop), model_cfg.normalisation,
                          cfg.crop, seed=cfg.seed)  # fmt: skip
    torch.manual_seed(cfg.seed)
    net = build_model(model_cfg).train()
    optimiser = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    losses = []
    for step, world in enumerate(worlds):
        crops = [dataset[i] for i in range(step * cfg.batch, (step + 1) * cfg.batch)]
        x = torch.stack([c[0] for c in crops])
        valid = torch.stack([c[1] for c in crops])
        orderings = draw_orderings(step_generator(cfg.seed, step))
        view1, view2 = net.forward_views(x, orderings, with_overcluster=True)

        def part(view: Any, r: int, w: int = world) -> list:
            return [t[r::w] if t is not None else None for t in view]

        loss = (
            sum(
                ac_loss(part(view1, r), part(view2, r), cfg.displacement, valid[r::world])
                for r in range(world)
            )
            / world
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    return losses, net.state_dict()


def bn_cancelled(keys: Iterable[str]) -> set[str]:
    """Weights whose gradient BatchNorm (nearly) cancels, plus the running means carrying them.

    The stem's conv bias feeds the stem BatchNorm, and the last block's final bias
    feeds the head BatchNorm (a per-channel shift survives only where its ReLU is
    off): their gradients are float rounding noise, which Adam turns into ±lr steps
    in either run, so they are compared through the network's outputs instead.
    """
    blocks = 1 + max(int(k.split(".")[1]) for k in keys if k.startswith("blocks."))
    return {
        "stem.conv.bias",
        "stem.bn.running_mean",
        f"blocks.{blocks - 1}.pointwise.4.bias",
        "head_norm.running_mean",
    }


def assert_same_network(found: dict, expected: dict, model_cfg: Any) -> None:
    """Every weight but :func:`bn_cancelled` agrees closely, and so do the outputs with
    batch statistics (where those weights cancel exactly)."""
    from acseg_core.model.nn import build_model

    for key in set(expected) - bn_cancelled(expected):
        torch.testing.assert_close(found[key].float(), expected[key].float(),
                                   rtol=1e-4, atol=5e-5, msg=key)  # fmt: skip
    nets = []
    for state in (found, expected):
        net = build_model(model_cfg).train()  # batch statistics: the BatchNorms cancel them
        net.load_state_dict(state)
        nets.append(net)
    x = torch.randn(2, model_cfg.in_channels, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(nets[0](x), nets[1](x), rtol=1e-3, atol=1e-4)


def test_two_gloo_ranks_match_one_process_and_resume_on_one(data: Path, tmp_path: Path) -> None:
    out, results = tmp_path / "run", tmp_path / "results"
    results.mkdir()
    cfg = config(data, out)
    assert launch(rank_entry, (cfg, results), WORLD) == 0

    reports = [json.loads((results / f"rank{r}.json").read_text()) for r in range(WORLD)]
    for report in reports:  # rank 1 stopped at rank 0's cancel, at the same step
        assert report["step"] == CANCEL_AFTER and report["cancelled"]
    rank0 = torch.load(results / f"rank0_step{CANCEL_AFTER}.pt")
    rank1 = torch.load(results / f"rank1_step{CANCEL_AFTER}.pt")
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key  # DDP keeps the replicas identical

    payload = load_checkpoint(out / "checkpoint.pt")
    assert payload["train_state"]["step"] == CANCEL_AFTER
    for key, value in payload["state_dict"].items():
        assert torch.equal(value, rank0[key])
    events = [e["event"] for e in read_log(out / "train.jsonl")]
    assert events.count("start") == 1 and events.count("cancelled") == 1  # rank 0 alone logs

    model_cfg = config_of(payload)
    ref_losses, _ = reference_training(cfg, model_cfg, [WORLD] * CANCEL_AFTER)
    ddp_losses = [reports[0]["losses"][str(s + 1)] for s in range(CANCEL_AFTER)]
    np.testing.assert_allclose(ddp_losses, ref_losses, rtol=1e-4, atol=1e-6)
    assert reports[1]["losses"] == reports[0]["losses"]  # the reported loss is the global mean

    # resume the 2-rank checkpoint in ONE process: same global step, batch and crops
    from acseg_core.training.loop import train

    resumed = replace(cfg, resume=True)
    for _ in train(resumed):
        pass
    final = load_checkpoint(out / "model.pt")
    assert final["meta"]["step"] == STEPS
    _, ref_state = reference_training(cfg, model_cfg, [WORLD] * CANCEL_AFTER + [1])
    assert_same_network(final["state_dict"], ref_state, model_cfg)


def test_collective_batchnorm_is_plain_batchnorm_in_one_process() -> None:
    """Without a process group (or in eval) it is BatchNorm2d, state dict included."""
    torch.manual_seed(0)
    plain, synced = torch.nn.BatchNorm2d(3), CollectiveBatchNorm2d(3)
    synced.load_state_dict(plain.state_dict())
    x = torch.randn(4, 3, 5, 5)
    torch.testing.assert_close(synced(x), plain(x))
    torch.testing.assert_close(synced.running_var, plain.running_var)
    assert Context().wrap(plain) is plain  # a plain run is left alone


def test_ranks_split_each_global_batch() -> None:
    ranks = [Context(rank=r, world_size=2) for r in range(2)]
    steps = [list(c.crop_indices(3, 5, 4)) for c in ranks]
    assert steps == [[12, 14, 16, 18], [13, 15, 17, 19]]
    assert sorted(steps[0][:2] + steps[1][:2]) == list(range(12, 16))  # step 3's crops
    with pytest.raises(Exception, match="divisible"):
        Context(rank=0, world_size=3).local_batch(4)
