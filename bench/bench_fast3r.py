# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Benchmark: forward time and peak memory of the real-size Fast3R (ViT-L/512, random weights).

Each configuration runs in a fresh subprocess so that its peak RSS is its own (model
construction included, as in the upstream figure). On CPU: float32, 2 and 4 views at 512x384
plus 2 views at 224x160 (``--quick``: only the small one). On CUDA: 2/8/32 views at 512x384
in bf16 autocast (fp16 where bf16 is unsupported), peak = ``torch.cuda.max_memory_allocated``.

Baseline: upstream Fast3R cannot be installed or run here (SPEC §11), so its figures are
**recorded elsewhere, not measured in this run**: upstream's own timings from a 2-core machine
of the same type (SPEC §13: 20.5 s / 4.0 GB for 2 views, 66-70 s / 4.75 GB for 4 views, fp32,
2 threads). The baseline column says so in every row that has one; ``ratio`` = recorded
upstream / ours (> 1 means faster, or smaller for the memory rows) and moves with this
machine's load, which the recorded figure does not. For the CUDA path use ``bench/gpu_check.py``.
"""

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import time

REPO = Path(__file__).resolve().parents[1]
# (views, H, W) -> (upstream seconds, upstream peak RSS GB), fp32 CPU, 2 threads (SPEC §13).
# Recorded elsewhere: never measured by this bench.
UPSTREAM_CPU = {(2, 384, 512): (20.5, 4.0), (4, 384, 512): (68.0, 4.75)}
RECORDED = 'upstream, recorded elsewhere (not this run)'


def _gemm_gflops(torch, device, seconds=1.0):
    """Measure fp32 matmul throughput now (the machine may be shared: context for timings)."""
    a = torch.randn(1536, 1024, device=device)
    b = torch.randn(1024, 4096, device=device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    if device.type == 'cuda':
        torch.cuda.synchronize()
    return 2 * 1536 * 1024 * 4096 * count / (time.perf_counter() - start) / 1e9


def _time_parts(model, device):
    """Accumulate seconds spent in the encoder, the fusion transformer and the two heads."""
    import torch
    parts = {}

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize()

    for name in ('encoder', 'decoder', 'downstream_head', 'downstream_head_local'):
        module = getattr(model, name)
        key = 'heads' if name.startswith('downstream') else name

        def pre(_mod, _args, key=key):
            sync()
            parts[key + '_t0'] = time.perf_counter()

        def post(_mod, _args, _out, key=key):
            sync()
            parts[key] = parts.get(key, 0.0) + time.perf_counter() - parts.pop(key + '_t0')

        module.register_forward_pre_hook(pre)
        module.register_forward_hook(post)
    return parts


def _child(spec):
    """Run one configuration in this process; return a dict of measurements."""
    import resource

    import torch

    from aetherscan_ros.models.fast3r import Fast3R
    from aetherscan_ros.models.fast3r.config import vit_large_512
    from aetherscan_ros.models.fast3r.inference import autocast_context, cast_for_autocast
    from aetherscan_ros.models.fast3r.random_weights import randomize_
    from aetherscan_ros.models.torch_device import select_device

    device, dtype = select_device(spec['device'])
    t0 = time.perf_counter()
    with torch.device('meta'):
        model = Fast3R(vit_large_512())
    model = model.to_empty(device=device)
    randomize_(model, seed=0)
    model.decoder.reset_buffers(device)
    if device.type == 'cuda':
        cast_for_autocast(model, dtype)  # as the backend does: half matmul weights
    model.eval()
    build_s = time.perf_counter() - t0
    gen = torch.Generator().manual_seed(0)
    imgs = (torch.rand(spec['views'], 3, spec['h'], spec['w'], generator=gen) * 2 - 1).to(device)
    parts = _time_parts(model, device)
    times = []
    gflops = [_gemm_gflops(torch, device)]
    for i in range(spec['warmup'] + spec['repeats']):
        if device.type == 'cuda':
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.inference_mode(), autocast_context(device, dtype):
            out = model(imgs, head_chunk=8)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        if i >= spec['warmup']:
            times.append(time.perf_counter() - t)
        else:
            parts.clear()
    gflops.append(_gemm_gflops(torch, device))
    assert torch.isfinite(out['pts3d_in_other_view']).all()
    result = {'times': times, 'build_s': build_s, 'threads': torch.get_num_threads(),
              'dtype': str(dtype).replace('torch.', ''), 'device': str(device),
              'gemm_gflops': [round(g, 1) for g in gflops], 'loadavg': os.getloadavg()[0],
              'parts_s': {k: round(v / len(times), 2) for k, v in parts.items()},
              'peak_rss_gb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2}
    if device.type == 'cuda':
        result['peak_gpu_gb'] = torch.cuda.max_memory_allocated(device) / 1024 ** 3
        result['gpu'] = torch.cuda.get_device_name(device)
    return result


def _run_child(spec):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([sys.executable, '-m', 'bench.bench_fast3r', '--child',
                           json.dumps(spec)], cwd=REPO, env=env, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f'bench child {spec} failed: {proc.stderr[-2000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median(values):
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else 0.5 * (values[mid - 1] + values[mid])


def rows_for(spec, res):
    """Return the two contract rows (forward time, peak memory) for one child's result."""
    views, h, w = spec['views'], spec['h'], spec['w']
    median = _median(res['times'])
    ref_s, ref_gb = UPSTREAM_CPU.get((views, h, w), (None, None)) \
        if res['device'] == 'cpu' else (None, None)
    size = f'{views} views {w}x{h}'
    where = (f"{res['device']} {res['dtype']}, {res['threads']} threads, fp32 GEMM "
             f"{res['gemm_gflops'][0]:.0f}/{res['gemm_gflops'][1]:.0f} GFLOP/s before/after, "
             f"load {res['loadavg']:.1f}")
    if 'gpu' in res:
        where += f", {res['gpu']}"
    where += f", parts (s) {res['parts_s']}"
    runs = f"{len(res['times'])} timed run(s) after 1 warm-up"
    peak = res.get('peak_gpu_gb', res['peak_rss_gb'])
    return [{
        'group': 'fast3r', 'what': 'forward ViT-L/512 (random weights)', 'size': size,
        'median_s': round(median, 3), 'throughput': f'{views / median:.2f} views/s',
        'baseline': f'{ref_s} s {RECORDED}' if ref_s else None,
        'ratio': round(ref_s / median, 2) if ref_s else None,
        'notes': (f'{where}; {runs}; baseline = upstream timing from SPEC §13, recorded '
                  'elsewhere (not this run)' if ref_s else f'{where}; {runs}')}, {
        'group': 'fast3r', 'what': 'peak GPU memory (GB)' if 'peak_gpu_gb' in res
        else 'peak RSS incl. model build (GB)', 'size': size, 'median_s': None,
        'throughput': round(peak, 2), 'baseline': f'{ref_gb} GB {RECORDED}' if ref_gb else None,
        'ratio': round(ref_gb / peak, 2) if ref_gb else None,
        'notes': f"process RSS {res['peak_rss_gb']:.2f} GB; build {res['build_s']:.1f} s"}]


def run(quick: bool = False) -> list:
    """Return benchmark rows (contract format); see the module docstring."""
    import torch
    rows = []
    if torch.cuda.is_available():
        configs = [(2, 384, 512), (8, 384, 512), (32, 384, 512)]
        if quick:
            configs = configs[:1]
        device = 'cuda'
    else:
        configs = [(2, 160, 224)] if quick else [(2, 160, 224), (2, 384, 512), (4, 384, 512)]
        device = 'cpu'
    for views, h, w in configs:
        repeats = 1 if (quick or views * h * w > 2 * 384 * 512) and device == 'cpu' else 2
        spec = {'views': views, 'h': h, 'w': w, 'device': device, 'warmup': 1,
                'repeats': repeats}
        rows += rows_for(spec, _run_child(spec))
    return rows


def main(argv=None):
    """Print the rows as a table (or run one child configuration with ``--child``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return 0
    keys = ('what', 'size', 'median_s', 'throughput', 'baseline', 'ratio', 'notes')
    for row in run(args.quick):
        print(' | '.join(f'{k}={row[k]}' for k in keys))
    return 0


if __name__ == '__main__':
    sys.exit(main())
