# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Benchmark: ``infer`` time and peak memory of the real-size MapAnything V1.1 (random weights).

Each configuration runs in a fresh subprocess so its peak RSS is its own (model construction
included, as in the upstream figure). On CPU: float32 (``use_amp=False``), 2 views at 518x392,
images only, memory-efficient heads; the first call and the median of the warm calls are
reported, with the time spent in the encoder, the transformer, the DPT and the pose head.
``--quick`` runs the tiny preset at the same size instead (the real size is for ``make bench``).
On CUDA the same configuration runs with bf16 autocast (fp16 where bf16 is not native); for
the GPU path use ``bench/gpu_check.py``.

Baseline: upstream MapAnything is not installed here, so its figures are **recorded upstream,
SPEC §14**, not measured in this run: upstream ``infer(use_amp=False)`` on a 2-core machine of
the same type, 2 threads, fp32: 44.7 s first call, 40.1 s warm, peak RSS 5.65 GB. ``ratio`` =
recorded upstream / ours (> 1 means faster or smaller) and moves with this machine's load.
"""

import argparse
import json
import os
from pathlib import Path
import resource
import subprocess
import sys
import time

REPO = Path(__file__).resolve().parents[1]
# (preset, views, H, W) -> (first call s, warm s, peak RSS GB), CPU fp32, 2 threads (SPEC §14).
UPSTREAM_CPU = {('giant', 2, 392, 518): (44.7, 40.1, 5.65)}
RECORDED = 'recorded upstream, SPEC §14 (not this run)'
PARTS = {'encoder': 'encoder', 'info_sharing': 'transformer', 'dense_head': 'dpt',
         'pose_head': 'pose'}


def _gemm_gflops(torch, device, seconds=1.0):
    """Measure fp32 matmul throughput now (the machine may be shared: context for timings)."""
    a = torch.randn(2048, 1536, device=device)
    b = torch.randn(1536, 4096, device=device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    if device.type == 'cuda':
        torch.cuda.synchronize()
    return 2 * 2048 * 1536 * 4096 * count / (time.perf_counter() - start) / 1e9


def _time_parts(model, device):
    """Accumulate seconds spent in the encoder, the transformer, the DPT and the pose head."""
    import torch
    parts = {}

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize()

    for name, key in PARTS.items():
        module = getattr(model, name)

        def pre(_mod, _args, key=key):
            sync()
            parts[key + '_t0'] = time.perf_counter()

        def post(_mod, _args, _out, key=key):
            sync()
            parts[key] = parts.get(key, 0.0) + time.perf_counter() - parts.pop(key + '_t0')

        if name == 'dense_head':  # a Sequential that forward() calls member by member
            module[0].register_forward_pre_hook(pre)
            module[1].register_forward_hook(post)
        else:
            module.register_forward_pre_hook(pre)
            module.register_forward_hook(post)
    return parts


def _child(spec):
    """Run one configuration in this process; return a dict of measurements."""
    import torch

    from aetherscan_ros.models.mapanything import MapAnything, PRESETS
    from aetherscan_ros.models.mapanything.inference import cast_for_autocast
    from aetherscan_ros.models.mapanything.random_weights import randomize_
    from aetherscan_ros.models.torch_device import select_device

    device, dtype = select_device(spec['device'])
    t0 = time.perf_counter()
    with torch.device('meta'):
        model = MapAnything(PRESETS[spec['preset']]())
    model = randomize_(model.to_empty(device=device), seed=0)
    cast_for_autocast(model, dtype)
    model.eval()
    build_s = time.perf_counter() - t0
    gen = torch.Generator().manual_seed(0)
    views = [{'img': torch.randn(1, 3, spec['h'], spec['w'], generator=gen).to(device)}
             for _ in range(spec['views'])]
    parts = _time_parts(model, device)
    gflops = [_gemm_gflops(torch, device)]
    times, part_runs = [], []
    for _ in range(1 + spec['repeats']):
        start = time.perf_counter()
        out = model.infer(views, use_amp=device.type == 'cuda')
        times.append(time.perf_counter() - start)
        part_runs.append({k: round(v, 2) for k, v in parts.items()})
        parts.clear()
    gflops.append(_gemm_gflops(torch, device))
    assert all(torch.isfinite(o['conf']).all() for o in out)
    result = {'first_s': times[0], 'times': times[1:], 'build_s': build_s,
              'threads': torch.get_num_threads(), 'device': str(device),
              'dtype': str(dtype).replace('torch.', ''), 'loadavg': os.getloadavg()[0],
              'parts_s': part_runs[-1], 'parameters': model.num_parameters(),
              'gemm_gflops': [round(g, 1) for g in gflops],
              'peak_rss_gb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2}
    if device.type == 'cuda':
        result['peak_gpu_gb'] = torch.cuda.max_memory_allocated(device) / 1024 ** 3
        result['gpu'] = torch.cuda.get_device_name(device)
    return result


def _run_child(spec):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([sys.executable, '-m', 'bench.bench_mapanything', '--child',
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
    """Return the rows (first call, warm median, peak memory) for one child's result."""
    key = (spec['preset'], spec['views'], spec['h'], spec['w'])
    ref = UPSTREAM_CPU.get(key) if res['device'] == 'cpu' else None
    size = f"{spec['views']} views {spec['w']}x{spec['h']}"
    what = (f"infer {spec['preset']} ({res['parameters']:,} params, random weights), "
            f"{res['device']} {res['dtype']}")
    gemm = res.get('gemm_gflops', [0.0, 0.0])
    where = (f"{res['threads']} threads, load {res['loadavg']:.1f}, fp32 GEMM {gemm[0]:.0f}/"
             f'{gemm[1]:.0f} GFLOP/s before/after, build '
             f"{res['build_s']:.1f} s, parts of the last run (s) {res['parts_s']}")
    if 'gpu' in res:
        where += f", {res['gpu']}"
    warm = _median(res['times'])
    note = f'; baseline {RECORDED}' if ref else ''
    peak = res.get('peak_gpu_gb', res['peak_rss_gb'])
    return [
        {'group': 'mapanything', 'what': what + ', first call', 'size': size,
         'median_s': round(res['first_s'], 3),
         'throughput': f"{spec['views'] / res['first_s']:.3f} views/s",
         'baseline': f'{ref[0]} s {RECORDED}' if ref else None,
         'ratio': round(ref[0] / res['first_s'], 2) if ref else None,
         'notes': where + note},
        {'group': 'mapanything', 'what': what + ', warm', 'size': size,
         'median_s': round(warm, 3), 'throughput': f"{spec['views'] / warm:.3f} views/s",
         'baseline': f'{ref[1]} s {RECORDED}' if ref else None,
         'ratio': round(ref[1] / warm, 2) if ref else None,
         'notes': f"median of {len(res['times'])} warm run(s); {where}{note}"},
        {'group': 'mapanything', 'what': 'peak GPU memory (GB)' if 'peak_gpu_gb' in res
         else 'peak RSS incl. model build (GB)', 'size': size, 'median_s': None,
         'throughput': round(peak, 2), 'baseline': f'{ref[2]} GB {RECORDED}' if ref else None,
         'ratio': round(ref[2] / peak, 2) if ref else None,
         'notes': f"preset {spec['preset']}; process RSS {res['peak_rss_gb']:.2f} GB{note}"},
    ]


def run(quick: bool = False) -> list:
    """Return benchmark rows (contract format); see the module docstring."""
    import torch
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    spec = {'preset': 'tiny' if quick else 'giant', 'views': 2, 'h': 392, 'w': 518,
            'device': device, 'repeats': 2 if quick or device == 'cuda' else 1}
    return rows_for(spec, _run_child(spec))


def main(argv=None):
    """Print the rows (or run one child configuration with ``--child``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
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
