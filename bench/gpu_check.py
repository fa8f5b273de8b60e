# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
One-shot check of the Fast3R CUDA path: ``make gpu-check`` (``python -m bench.gpu_check``).

Runs the production path (``cast_for_autocast`` + ``run_fast3r``: matmul weights in the
autocast dtype, float32 LayerNorms and heads, one device->host copy) and prints two tables:

1. **Parity.** Parity fixture A (``test/fixtures/fast3r/parity_a``: upstream outputs on a tiny
   random-weight model) on CUDA in bf16 (only where the GPU has it natively), fp16 and fp32,
   against the port on the CPU in float64. Error = the largest per-pixel relative error
   (``|a - b| / |b|``, vector norms for points). Tolerances (``TOLERANCE``): bf16 1.5e-2, fp16
   5e-3, fp32 5e-3 (cuDNN's default TF32 convolutions in the heads). Measured on a CPU with
   CPU autocast as a stand-in: bf16 8.5e-3, fp16 1.5e-3, fp32 2e-6; the same run with the
   heads in bf16 (the old path) gives 3.8e-2, in fp16 4.8e-3.
2. **Cost.** The real-size ViT-L/512 (``config_vitl512.json``, random weights) at 2/8/32 views
   of 512x384 in bf16 (where native) and fp16: median forward time (1 warm-up, then
   ``--repeats``), ``torch.cuda.max_memory_allocated`` peak and the weights' own memory. A
   configuration that runs out of memory is reported as such.

Without CUDA (or with ``--cpu``) the parity part runs on the CPU in float32 vs float64, so the
script itself is exercised; with ``--preset tiny`` the cost loop runs too (CPU, float32, small
model). It then prints one line saying there is no GPU and exits 0. Exit 1 when a parity check
fails. Results also go to ``bench_results/gpu_check.json`` (``--json``).
"""

import argparse
import json
from pathlib import Path
import platform
import statistics
import sys
import time

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / 'test' / 'fixtures' / 'fast3r'
KEYS = ('pts3d_in_other_view', 'conf', 'pts3d_local', 'conf_local')
#: Largest accepted per-pixel relative error against the CPU float64 run, by compute dtype.
TOLERANCE = {'bfloat16': 1.5e-2, 'float16': 5e-3, 'float32': 5e-3}
#: On the CPU (no autocast, no TF32) float32 must match float64 far closer.
CPU_TOLERANCE = 1e-4


def relative_error(out, ref) -> float:
    """Return the largest per-pixel relative error of ``out`` against ``ref`` (numpy arrays)."""
    import numpy as np
    a, b = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    if a.shape != b.shape:
        raise ValueError(f'shape {a.shape} != reference {b.shape}')
    if a.ndim >= 3 and a.shape[-1] == 3:  # points: compare vectors
        diff, size = np.linalg.norm(a - b, axis=-1), np.linalg.norm(b, axis=-1)
    else:
        diff, size = np.abs(a - b), np.abs(b)
    if not np.isfinite(a).all():
        return float('inf')
    return float((diff / np.maximum(size, 1e-12)).max())


def parity(device, dtypes, fixtures=FIXTURES):
    """Run fixture A on ``device`` in each of ``dtypes``; return one row per dtype and output."""
    import numpy as np
    import torch

    from aetherscan_ros.models.fast3r import Fast3R
    from aetherscan_ros.models.fast3r.inference import cast_for_autocast, run_fast3r
    directory = fixtures / 'parity_a'
    fixture = np.load(directory / 'fixture.npz')
    imgs = torch.from_numpy(fixture['img'])
    ids = fixture['image_ids'].tolist()
    reference = Fast3R.from_pretrained(directory).double()
    with torch.inference_mode():
        ref = reference(imgs.double(), image_ids=ids)
    ref = {k: ref[k].numpy() for k in KEYS}
    upstream = max(float(np.abs(ref[k] - fixture[k + '_f64']).max()) for k in KEYS)
    rows = []
    for dtype in dtypes:
        model = cast_for_autocast(Fast3R.from_pretrained(directory), dtype).to(device)
        out = run_fast3r(model, [imgs[i:i + 1] for i in range(len(ids))], ids, device, dtype)
        name = str(dtype).replace('torch.', '')
        tol = TOLERANCE[name] if device.type == 'cuda' else CPU_TOLERANCE
        for key in KEYS:
            err = relative_error(np.stack(out[key]), ref[key])
            rows.append({'device': str(device), 'dtype': name, 'output': key,
                         'max_rel_error': err, 'tolerance': tol, 'ok': err <= tol,
                         'cpu_f64_vs_upstream_f64': upstream})
        del model
    return rows


def build_model(config, device, dtype, seed=0):
    """Return a random-weight Fast3R of ``config`` on ``device``, weights cast for ``dtype``."""
    import torch

    from aetherscan_ros.models.fast3r import Fast3R
    from aetherscan_ros.models.fast3r.inference import cast_for_autocast
    from aetherscan_ros.models.fast3r.random_weights import randomize_
    with torch.device('meta'):
        model = Fast3R(config)
    model = randomize_(model.to_empty(device='cpu'), seed=seed)
    return cast_for_autocast(model, dtype).to(device).eval()


def cost(config, device, dtype, views, size, repeats):
    """Time ``run_fast3r`` at each view count; return one row per count (or its OOM)."""
    import torch

    from aetherscan_ros.models.fast3r.inference import is_out_of_memory, run_fast3r
    cuda = device.type == 'cuda'

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device) if cuda else 0
    model = build_model(config, device, dtype)
    weights = (torch.cuda.memory_allocated(device) - base) if cuda else sum(
        p.numel() * p.element_size() for p in model.parameters())
    width, height = size, size * 3 // 4 // 16 * 16
    name = str(dtype).replace('torch.', '')
    rows = []
    for count in views:
        gen = torch.Generator().manual_seed(count)
        imgs = [torch.rand(1, 3, height, width, generator=gen) * 2 - 1 for _ in range(count)]
        row = {'device': str(device), 'dtype': name, 'views': count,
               'size': f'{width}x{height}', 'weights_gb': weights / 1024 ** 3}
        try:
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
            times = []
            for i in range(1 + repeats):
                sync()
                start = time.perf_counter()
                out = run_fast3r(model, imgs, device=device, dtype=dtype)
                sync()
                if i:
                    times.append(time.perf_counter() - start)
            row['median_s'] = statistics.median(times)
            row['views_per_s'] = count / row['median_s']
            row['finite'] = all(bool(torch.isfinite(torch.from_numpy(a)).all())
                                for key in KEYS for a in out[key])
            if cuda:
                row['peak_gb'] = torch.cuda.max_memory_allocated(device) / 1024 ** 3
        except Exception as exc:  # noqa: B902 - an OOM row is a result, anything else is not
            if not is_out_of_memory(exc):
                raise
            row['error'] = f'out of memory: {str(exc).splitlines()[0][:160]}'
            if cuda:
                torch.cuda.empty_cache()
        rows.append(row)
    del model
    if cuda:
        torch.cuda.empty_cache()
    return rows


def _config(preset):
    from aetherscan_ros.models.fast3r.config import load_config, PRESETS
    if preset == 'vitl512' and (FIXTURES / 'config_vitl512.json').is_file():
        return load_config(FIXTURES / 'config_vitl512.json')
    return PRESETS[preset]()


def _facts(torch, device):
    facts = {'torch': torch.__version__, 'cuda_build': torch.version.cuda,
             'python': platform.python_version(), 'device': str(device)}
    if device.type == 'cuda':
        facts['gpu'] = torch.cuda.get_device_name(device)
        facts['capability'] = '%d.%d' % torch.cuda.get_device_capability(device)
        facts['memory_gb'] = torch.cuda.get_device_properties(device).total_memory / 1024 ** 3
        facts['cudnn_allow_tf32'] = torch.backends.cudnn.allow_tf32
        facts['matmul_allow_tf32'] = torch.backends.cuda.matmul.allow_tf32
    return facts


def _print_parity(rows):
    print(f"{'device':8} {'dtype':9} {'output':20} {'max rel err':>11} {'tolerance':>9}  ok")
    for r in rows:
        print(f"{r['device']:8} {r['dtype']:9} {r['output']:20} {r['max_rel_error']:11.2e} "
              f"{r['tolerance']:9.1e}  {'ok' if r['ok'] else 'FAIL'}")


def _print_cost(rows):
    print(f"{'device':8} {'dtype':9} {'views':>5} {'size':8} {'median s':>9} {'views/s':>8} "
          f"{'peak GB':>8} {'weights GB':>10}")
    for r in rows:
        if 'error' in r:
            print(f"{r['device']:8} {r['dtype']:9} {r['views']:5d} {r['size']:8} {r['error']}")
            continue
        peak = f"{r['peak_gb']:8.2f}" if 'peak_gb' in r else f"{'-':>8}"
        print(f"{r['device']:8} {r['dtype']:9} {r['views']:5d} {r['size']:8} "
              f"{r['median_s']:9.3f} {r['views_per_s']:8.1f} {peak} {r['weights_gb']:10.2f}"
              + ('' if r['finite'] else '  (non-finite outputs)'))


def main(argv=None) -> int:
    """Run the check; see the module docstring. Returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--preset', default='vitl512', choices=('vitl512', 'tiny'),
                        help='model for the cost part (default: the real ViT-L/512)')
    parser.add_argument('--views', default='2,8,32', help='view counts (default 2,8,32)')
    parser.add_argument('--size', type=int, default=512,
                        help='image width; height = 3/4 of it, a multiple of 16 (default 512)')
    parser.add_argument('--repeats', type=int, default=2, help='timed runs after 1 warm-up')
    parser.add_argument('--cpu', action='store_true', help='behave as on a machine without CUDA')
    parser.add_argument('--json', default=str(REPO / 'bench_results' / 'gpu_check.json'),
                        help="where to write the results ('' = nowhere)")
    args = parser.parse_args(argv)
    views = [int(v) for v in args.views.split(',') if v.strip()]
    if args.size < 16 or args.size % 16:
        parser.error(f'--size {args.size}: must be a positive multiple of 16')

    import torch

    from aetherscan_ros.models.torch_device import native_bf16
    cuda = torch.cuda.is_available() and not args.cpu
    device = torch.device('cuda', torch.cuda.current_device()) if cuda else torch.device('cpu')
    facts = _facts(torch, device)
    print('gpu_check: ' + ', '.join(f'{k} {v}' for k, v in facts.items()), flush=True)
    if cuda:
        halves = ([torch.bfloat16] if native_bf16(device) else []) + [torch.float16]
        parity_rows = parity(device, halves + [torch.float32])
    else:
        halves = [torch.float32]
        parity_rows = parity(device, [torch.float32])
    _print_parity(parity_rows)
    cost_rows = []
    if cuda or args.preset == 'tiny':
        config = _config(args.preset)
        for dtype in halves:
            cost_rows += cost(config, device, dtype, views, args.size, args.repeats)
        _print_cost(cost_rows)
    failed = [r for r in parity_rows if not r['ok']]
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({'facts': facts, 'preset': args.preset,
                                    'parity': parity_rows, 'cost': cost_rows}, indent=1))
        print(f'wrote {path}')
    verdict = (f'parity {"FAILED: " + str(len(failed)) + " check(s)" if failed else "ok"} '
               f'({len(parity_rows)} checks)')
    if not cuda:
        why = '--cpu given' if args.cpu else (
            f'torch {torch.__version__} sees no CUDA device'
            + ('' if torch.version.cuda else ' (a CPU-only build)'))
        print(f'gpu_check: NO GPU ({why}): GPU timings and CUDA parity skipped; {verdict} on '
              f'the CPU in float32 vs float64')
    else:
        print(f'gpu_check: {verdict} on {facts["gpu"]}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
