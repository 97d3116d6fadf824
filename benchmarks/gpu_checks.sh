#!/usr/bin/env bash
# The CUDA checks, as one script for a GPU machine that has the package and
# its dependencies installed (pip install -e ".[dev]"). Writes under OUT
# (default ./gpu_checks): the CUDA-marked tests' log, the GPU training rows
# (results_training_gpu.json) and results_embed_cuda.json, the agreement of
# `eres2net embed` on CUDA with the CPU eager fp32 model on the CUDA
# quickstart's model and corpus.
#
#   bash benchmarks/gpu_checks.sh
set -u
OUT=${OUT:-gpu_checks}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch, speechbrain; print('torch', torch.__version__, 'speechbrain',
speechbrain.__version__, 'cuda', torch.cuda.is_available(), 'cpu',
torch.backends.cpu.get_cpu_capability())"

# 1. The CUDA-marked journeys (fp16 training and its resume; quickstart and
#    verify on CUDA). Temp folders are kept for step 3 (--vad off there: the
#    synthetic voices are not speech to the VAD, as in the quickstart).
rm -rf /tmp/gpu_pt
timeout 330 python3 -m pytest -p no:cacheprovider -m cuda tests/test_journeys.py \
    --basetemp=/tmp/gpu_pt -rA 2>&1 | tee "$OUT/cuda_tests.log" | tail -40

# 2. GPU training rows: ours (fp32, bf16, channels-last) vs the official model.
timeout 120 python3 -m benchmarks --only training --device cuda \
    --json "$OUT/results_training_gpu.json" 2>&1 | tail -20

# 3. eres2net embed on CUDA (auto precision, fp32, torchrun) vs CPU eager fp32.
run=$(ls -d /tmp/gpu_pt/test_quickstart_and_verify_on_c*/results/quickstart 2>/dev/null | head -1)
if [ -n "$run" ]; then
    data=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['data_folder'])" "$run/summary.json")
    e=/tmp/gpu_embed; rm -rf $e; mkdir -p $e
    for spec in "cpu_eager cpu --no-fast" "cuda_fp32 cuda --precision fp32" \
            "cuda_auto cuda --precision auto"; do
        set -- $spec
        name=$1; shift
        start=$EPOCHREALTIME
        eres2net embed --model "$run/model" --device "$@" --vad off --no-progress \
            --out $e/$name.npz "$data/wav" 2>&1 | tail -3
        awk -v a="$start" -v b="$EPOCHREALTIME" -v n="$name" 'BEGIN {printf "%s: %.1f s\n", n, b - a}'
    done
    timeout 120 torchrun --nproc_per_node 1 -m speechbrain_eres2net.cli embed \
        --model "$run/model" --device cuda --precision fp32 --vad off --no-progress \
        --out $e/torchrun.npz "$data/wav" 2>&1 | tail -3
    python3 - "$e" "$OUT/results_embed_cuda.json" <<'EOF'
import json, sys
from pathlib import Path
from benchmarks.extraction import min_cosine_npz, npz_keys
folder, out = Path(sys.argv[1]), sys.argv[2]
ref = folder / "cpu_eager.npz"
rows = {}
for name in ("cuda_fp32", "cuda_auto", "torchrun"):
    got = folder / f"{name}.npz"
    if not got.is_file():
        rows[name] = f"{got} was not written"
        continue
    rows[name] = {
        "files": len(npz_keys(ref)),
        "same_keys": sorted(npz_keys(ref)) == sorted(npz_keys(got)),
        "min_cosine_to_cpu_eager_fp32": min_cosine_npz(ref, got),
    }
print(json.dumps(rows, indent=1))
Path(out).write_text(json.dumps(rows, indent=1))
EOF
fi
