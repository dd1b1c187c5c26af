#!/usr/bin/env bash
# One call on a lent GPU machine (DEVELOPERS.md "GPU machine"): machine facts, the GPU-marked tests, the GPU
# benchmarks, per-stage times and CLI end-to-end times on the GPU and the CPU of the same machine.
# Everything lands in $OUT/gpu-session.tar.gz (logs, JSON, the GLBs the tests wanted validated: the machine
# has no node, so tests/conftest.py copies them there and the dev machine runs the Khronos validator on them).
# Run from the repository root:  bash bench/gpu_session.sh   (with .whl/ holding a trimesh wheel, carried)
# QUICK=1: about 100 s instead of 200: only tests/test_cupy_ops_gpu.py, no adaptive benchmarks, the CLI on the GPU only.
set -u
OUT=${OUT:-/tmp/gpu-session}
WORK=$(mktemp -d)
mkdir -p "$WORK/validate"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 GPURELIEF_VALIDATE_LATER="$WORK/validate"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
finish() { tar -czf "$OUT/gpu-session.tar.gz" -C "$WORK" . ; }
trap finish EXIT

{
    date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,pcie.link.gen.max,pcie.link.width.max --format=csv
    nproc; python3 --version
    python3 -c "import numpy, cupy, numba, PIL; print('numpy', numpy.__version__, 'cupy', cupy.__version__, 'numba', numba.__version__, 'pillow', PIL.__version__)"
    python3 -m gpurelief doctor
} >"$WORK/facts.txt" 2>&1
cat "$WORK/facts.txt"

echo "== GPU-marked tests + the device-path tests"
if [ "${QUICK:-0}" = 1 ]; then TESTS=(tests/test_cupy_ops_gpu.py -k "not adaptive"); BENCH_K="not adaptive"; DEVICES="cuda"
else TESTS=(tests/test_cupy_ops_gpu.py tests/test_rtin_gpu.py tests/test_cli_depth_models.py tests/test_device_select.py
            tests/test_glb_device_stream.py); BENCH_K=""; DEVICES="cuda cpu"; fi
timeout 170 python3 -m pytest -p no:cacheprovider -q -rfEs --timeout 150 --junitxml="$WORK/gpu-tests.xml" \
    "${TESTS[@]}" >"$WORK/gpu-tests.log" 2>&1
echo "pytest rc $?"; tail -n 25 "$WORK/gpu-tests.log"

echo "== per-stage times"
timeout 60 python3 bench/gpu_stages.py --json "$WORK/gpu-stages.json" 2>&1 | tee "$WORK/gpu-stages.md"

echo "== GPU benchmarks"
timeout 150 python3 -m pytest -p no:cacheprovider -q bench/test_bench_gpu.py --benchmark-only -k "$BENCH_K" \
    --benchmark-json="$WORK/gpu-bench.json" --benchmark-columns=min,median,max,rounds >"$WORK/gpu-bench.log" 2>&1
echo "bench rc $?"; grep -E "test_bench|passed|failed|Error" "$WORK/gpu-bench.log" | tail -n 20

echo "== CLI end to end: 12 MP photo, GPU vs CPU of this machine"
timeout 110 python3 - "$WORK" $DEVICES <<'EOF' 2>&1 | tee "$WORK/cli-times.md"
import statistics, subprocess, sys, time
from pathlib import Path
from PIL import Image
from gpurelief.synthetic import photo_like
work = Path(sys.argv[1])
photo = work / "photo12mp.jpg"
Image.fromarray(photo_like(3000, 4000)).save(photo, quality=90)
cases = [("grid 1024", []), ("grid full", ["--max-size", "full"]),
         ("adaptive 0.1% full", ["--max-size", "full", "--mesh", "adaptive", "--max-error", "0.1%", "--quality-pass", "off"])]
print("| case | device | median s (3 runs) | output MB |")
print("|---|---|---|---|")
for label, extra in cases:
    for device in sys.argv[2:]:
        out = work / "cli-out.glb"
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "gpurelief", "convert", str(photo), "-o", str(out), "--device", device,
                                "-v", *extra], capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            if p.returncode:
                print(f"| {label} | {device} | failed rc {p.returncode}: {p.stderr.strip()[-300:]} | |")
                break
        else:
            print(f"| {label} | {device} | {statistics.median(times):.2f} | {out.stat().st_size / 1e6:.0f} |")
            (work / f"cli-{label.replace(' ', '_').replace('%', 'pct')}-{device}.txt").write_text(p.stdout + p.stderr)
        out.unlink(missing_ok=True)
photo.unlink()
EOF

echo "== compute-sanitizer memcheck over the kernels (small shapes)"
if command -v compute-sanitizer >/dev/null; then
    timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 --print-limit 20 python3 -m pytest -p no:cacheprovider -q -x \
        tests/test_cupy_ops_gpu.py tests/test_rtin_gpu.py::test_cupy_launcher_needs_a_device_or_says_so -k "not shape4 and not out_of_memory and not convert and not glb_streamed" \
        >"$WORK/memcheck.log" 2>&1
    echo "memcheck rc $?"; tail -n 8 "$WORK/memcheck.log"
fi
