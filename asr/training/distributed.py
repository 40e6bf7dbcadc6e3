"""Data-parallel training over processes, GPUs and nodes, set up from the environment `torchrun` gives.

    torchrun --standalone --nproc-per-node 8 -m asr.train ...                          # one node, 8 GPUs
    torchrun --nnodes 4 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29400 -m asr.train ...

With WORLD_SIZE unset or 1 nothing here talks to another process: every helper returns its input as it is.
"""

from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

TIMEOUT = datetime.timedelta(minutes=60)  # longest wait in a collective (rank 0 writing a checkpoint, validating)


@dataclass(frozen=True)
class DistContext:
    rank: int = 0  # this process among all processes of the job
    world_size: int = 1  # processes in the job (GPUs, or CPU processes)
    local_rank: int = 0  # this process among those on its node: the index of its GPU
    device: str = "cpu"  # where this process computes, and where collective tensors live ("cuda:N" for nccl)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str) -> DistContext:
    """Join the process group that torchrun's RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR describe (backend
    nccl on cuda, gloo on cpu), or return a one-process context. On cuda each process takes GPU LOCAL_RANK."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext(device=device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.device(device).type == "cuda"
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPUs on this node")
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT)
    return DistContext(rank, world_size, local_rank, device)


def shutdown(ctx: DistContext) -> None:
    """Leave the process group once every process got here."""
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def end_process(code: int) -> int:
    """The exit status for main() to return; in a process torchrun started, the end of the process itself: stdout
    and stderr flushed, then os._exit(code), without the interpreter's teardown. DDP keeps the gloo group
    referenced, so its worker threads outlive destroy_process_group(), and an interpreter torn down beneath them
    aborted about 1 run in 100 on a loaded 2-core machine ("terminate called without an active exception", exit
    -6) after all its work was done and written. Every file a run writes is closed before this."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return code
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def all_sum(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Element-wise sum of a tensor over all processes (a new tensor on ctx.device; the input itself when alone)."""
    if not ctx.enabled:
        return values
    out = values.detach().to(ctx.device, torch.float64, copy=True)
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def any_true(flags: list[bool], ctx: DistContext) -> list[bool]:
    """Per position: whether the flag is set on any process, so that every process takes the same branch."""
    if not ctx.enabled:
        return list(flags)
    return [bool(v > 0) for v in all_sum(torch.tensor(flags, dtype=torch.float64), ctx).tolist()]


def gather(obj, ctx: DistContext) -> list:
    """Every process's picklable object, in rank order, on every process."""
    if not ctx.enabled:
        return [obj]
    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj, ctx: DistContext):
    """Rank 0's picklable object, on every process (the others pass anything, e.g. None)."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()
