"""Training-step benchmarks: ours vs the official model with the same loss.

One step = forward of a batch of random crops (features), the cosine
classifier of our recipe (SpeechBrain's ECAPA ``Classifier``), the AAM
softmax of :class:`speechbrain_eres2net.nnet.losses.ArcMarginLoss`, backward
and an SGD step (momentum 0.9, Nesterov, weight decay 1e-4, the official
recipe's optimiser). On CPU every configuration runs in its own process so
that its peak RSS can be read; on a GPU ``torch.cuda.max_memory_allocated``
is used instead.
"""

from __future__ import annotations

import time

import torch

from .driver import render, skipped, table
from .measure import interleaved_times, run_isolated, set_threads, twin_models

NUM_CLASSES = 5994  # VoxCeleb2-dev speakers
CPU_ROWS = table(
    """
    {name}: step time{label}
        ours_s / official_s, s, >= 0.95
    {name}: peak RSS{label}
        ours_rss / official_rss, MiB, <= 1.0
        above import baseline: {ours_work:.0f} vs official {official_work:.0f} MiB
    """
)
GPU_ROWS = table(
    """
    {name}: samples/s
        speed / ref_speed, samples/s, >= 1.5
        reference = official fp32
    {name}: peak memory
        memory / ref_memory, MiB, <= 0.6
        torch.cuda.max_memory_allocated
    """
)


def _step_parts(implementation: str, m_channels: int, device: str):
    """(embedding function, parameters) of the official model or ours."""
    from speechbrain.lobes.models.ECAPA_TDNN import Classifier

    from speechbrain_eres2net.nnet.losses import ArcMarginLoss

    reference, ours = twin_models(m_channels)
    model = (reference if implementation == "official" else ours).to(device).train()
    classifier = Classifier(input_size=192, lin_blocks=0, out_neurons=NUM_CLASSES)
    classifier = classifier.to(device)
    loss_fn = ArcMarginLoss(scale=32.0, margin=0.2)

    def embed(x: torch.Tensor) -> torch.Tensor:
        if implementation == "official":
            return model(x).unsqueeze(1)
        return model(x)

    params = list(model.parameters()) + list(classifier.parameters())
    optimizer = torch.optim.SGD(
        params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4
    )

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(classifier(embed(x)), y)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return model, step


def train_step(implementation, batch, frames, steps, threads, channels_last) -> dict:
    """Worker: median seconds per CPU training step, after one untimed step
    (allocator, oneDNN primitives, optimiser state)."""
    set_threads(threads)
    model, step = _step_parts(implementation, 32, "cpu")
    if channels_last:  # the recipe's ``channels_last: True``
        model.to(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, frames, 80, generator=generator)
    y = torch.randint(0, NUM_CLASSES, (batch,), generator=generator)
    return {"seconds": interleaved_times({"step": lambda: step(x, y)}, steps)["step"]}


def bench_training(args) -> list:
    """The CPU rows, or with ``--device cuda`` the GPU rows (whose reference is
    the official model on the same GPU)."""
    if args.device == "cuda":
        return bench_gpu(batch=max(args.train_batch, 2), frames=args.train_frames)
    batch, frames, steps = args.train_batch, args.train_frames, args.train_steps
    return bench_cpu(
        batch, frames, steps, args.thread_counts[-1], 1 if args.quick else 3
    )


def bench_cpu(batch: int, frames: int, steps: int, threads: int, rounds: int) -> list:
    """Ours vs official CPU training step: time and peak RSS.

    Ours runs with PyTorch's default NCHW weights and channels-last (the
    recipe's default). Runs official, ours, ours channels-last, official,
    ... (``rounds`` fresh processes each) and keeps the best run of each, to
    limit the effect of load from other processes.
    """
    configs = {
        "official": ("official", False),
        "ours": ("ours", False),
        "ours channels-last": ("ours", True),
    }
    runs: dict[str, list[dict]] = {label: [] for label in configs}
    for _ in range(rounds):
        for label, (implementation, channels_last) in configs.items():
            kwargs = {"implementation": implementation, "batch": batch}
            kwargs.update(frames=frames, steps=steps, threads=threads)
            kwargs["channels_last"] = channels_last
            target = "benchmarks.training:train_step"
            runs[label].append(run_isolated(target, kwargs, threads))
    best = {
        label: {
            "s": min(r["seconds"] for r in done),
            "rss": min(r["peak_rss_mb"] for r in done),
            "base": min(r["base_rss_mb"] for r in done),
        }
        for label, done in runs.items()
    }
    name = f"base b{batch}x{frames}fr fwd+bwd+SGD {threads}thr"
    rows = []
    for config, label in (("ours", ""), ("ours channels-last", " (channels-last)")):
        ours, official = best[config], best["official"]
        values = {"name": name, "label": label}
        for who, result in (("ours", ours), ("official", official)):
            values[f"{who}_s"], values[f"{who}_rss"] = result["s"], result["rss"]
            values[f"{who}_work"] = result["rss"] - result["base"]
        rows += render("training", CPU_ROWS, values)
    return rows


def bench_gpu(
    batch: int = 64, frames: int = 298, steps: int = 10, m_channels: int = 32
) -> list:
    """Samples/s and peak CUDA memory: official fp32 vs our settings.

    Ours runs in fp32, bf16 autocast, channels-last and bf16 +
    channels-last; each is compared with the official model in fp32.
    Returns a skip row without CUDA.
    """
    if not torch.cuda.is_available():
        return skipped("training gpu", "GPU training step", "no CUDA")
    device = "cuda"
    gpu = torch.cuda.get_device_name()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, frames, 80, generator=generator).to(device)
    y = torch.randint(0, NUM_CLASSES, (batch,), generator=generator).to(device)
    torch.backends.cudnn.benchmark = True

    def measure(implementation: str, bf16: bool, channels_last: bool) -> tuple:
        model, step = _step_parts(implementation, m_channels, device)
        if channels_last:
            model.to(memory_format=torch.channels_last)

        def run() -> None:
            with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
                step(x, y)

        run()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(steps):
            run()
        torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / steps
        memory = torch.cuda.max_memory_allocated() / 2**20
        torch.cuda.empty_cache()
        return batch / seconds, memory

    ref_speed, ref_memory = measure("official", False, False)
    rows = []
    for label, bf16, channels_last in (
        ("fp32", False, False),
        ("bf16 autocast", True, False),
        ("channels-last", False, True),
        ("bf16 + channels-last", True, True),
    ):
        speed, memory = measure("ours", bf16, channels_last)
        values = {"name": f"{gpu} b{batch}x{frames}fr {label}", "speed": speed}
        values.update(memory=memory, ref_speed=ref_speed, ref_memory=ref_memory)
        rows += render("training gpu", GPU_ROWS, values)
    return rows
