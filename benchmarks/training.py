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

import statistics
import time

import torch

from .common import Row, run_isolated, set_threads, speed_row, twin_models

NUM_CLASSES = 5994  # VoxCeleb2-dev speakers
SPEED_TARGET = 0.95
MEMORY_TARGET = 1.0
GPU_SPEED_TARGET = 1.5
GPU_MEMORY_TARGET = 0.6


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


def train_step(
    implementation: str,
    batch: int = 32,
    frames: int = 298,
    steps: int = 2,
    m_channels: int = 32,
    threads: int = 2,
    channels_last: bool = False,
) -> dict:
    """Median seconds per CPU training step (run in a worker for peak RSS)."""
    set_threads(threads)
    model, step = _step_parts(implementation, m_channels, "cpu")
    if channels_last:  # the recipe's ``channels_last: True``
        model.to(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, frames, 80, generator=generator)
    y = torch.randint(0, NUM_CLASSES, (batch,), generator=generator)
    step(x, y)  # warm-up: allocator, oneDNN primitives, optimiser state
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(x, y)
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times)}


def bench_cpu(
    batch: int = 32,
    frames: int = 298,
    steps: int = 2,
    threads: int = 2,
    rounds: int = 2,
) -> list[Row]:
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
            runs[label].append(
                run_isolated(
                    "benchmarks.training:train_step",
                    {
                        "implementation": implementation,
                        "batch": batch,
                        "frames": frames,
                        "steps": steps,
                        "threads": threads,
                        "channels_last": channels_last,
                    },
                    threads,
                )
            )
    name = f"base b{batch}x{frames}fr fwd+bwd+SGD {threads}thr"
    rows = []
    for config in ("ours", "ours channels-last"):
        label = "" if config == "ours" else " (channels-last)"
        ours, official = runs[config], runs["official"]
        peak = min(r["peak_rss_mb"] for r in ours)
        ref_peak = min(r["peak_rss_mb"] for r in official)
        above = peak - min(r["base_rss_mb"] for r in ours)
        ref_above = ref_peak - min(r["base_rss_mb"] for r in official)
        rows.append(
            speed_row(
                "training",
                f"{name}: step time{label}",
                min(r["seconds"] for r in ours),
                min(r["seconds"] for r in official),
                SPEED_TARGET,
                unit="s",
            )
        )
        rows.append(
            Row(
                "training",
                f"{name}: peak RSS{label}",
                peak,
                ref_peak,
                "MiB",
                peak / ref_peak,
                MEMORY_TARGET,
                higher_is_better=False,
                note=f"above import baseline: {above:.0f} vs official "
                f"{ref_above:.0f} MiB",
            )
        )
    return rows


def bench_gpu(
    batch: int = 64, frames: int = 298, steps: int = 10, m_channels: int = 32
) -> list[Row]:
    """Samples/s and peak CUDA memory: official fp32 vs our settings.

    Ours runs in fp32, bf16 autocast, channels-last and bf16 +
    channels-last; each is compared with the official model in fp32.
    Returns a skip row without CUDA.
    """
    if not torch.cuda.is_available():
        return [Row("training gpu", "GPU training step", None, note="skipped: no CUDA")]
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
        name = f"{gpu} b{batch}x{frames}fr {label}"
        rows.append(
            Row(
                "training gpu",
                f"{name}: samples/s",
                speed,
                ref_speed,
                "samples/s",
                speed / ref_speed,
                GPU_SPEED_TARGET,
                note="reference = official fp32",
            )
        )
        rows.append(
            Row(
                "training gpu",
                f"{name}: peak memory",
                memory,
                ref_memory,
                "MiB",
                memory / ref_memory,
                GPU_MEMORY_TARGET,
                higher_is_better=False,
                note="torch.cuda.max_memory_allocated",
            )
        )
    return rows
