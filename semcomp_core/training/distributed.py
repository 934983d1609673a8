"""Multi-GPU without code changes: launched by ``torchrun --nproc_per_node N`` (or ``accelerate launch``,
which sets the same variables) the trainers join a torch.distributed process group, wrap models in
DistributedDataParallel and draw different batches per rank; launched plainly they run single-process."""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device: str) -> tuple[DistInfo, str]:
    import torch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), device
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    dist.init_process_group(backend)
    return DistInfo(dist.get_rank(), world, local), device


def wrap(model, info: DistInfo, device: str):
    if info.world <= 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [int(device.split(":")[1])] if device.startswith("cuda") else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=False)


def barrier(info: DistInfo) -> None:
    if info.world > 1:
        import torch.distributed as dist
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.world > 1:
        import torch.distributed as dist
        dist.destroy_process_group()


def start_run(device: str, threads: int | None, seed: int, out: str):
    """Common start of a training run: process group, CPU threads, per-rank seed, output folder."""
    from pathlib import Path

    import torch

    info, device = setup(device)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed + info.rank)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    return info, device, out_dir
