# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
One-shot check of the Fast3R and MapAnything CUDA paths: ``make gpu-check``.

``python -m bench.gpu_check [--model all|fast3r|mapanything]``.

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

MapAnything (``--model mapanything|all``), the same two parts: its fixture A (3 runs: images,
poses + intrinsics, intrinsics + depth) through ``infer`` (no masks), ``cast_for_autocast``,
bf16/fp16/fp32 vs the port on the CPU in float64 (itself within 1e-9 of upstream's float64);
``MA_TOLERANCE`` bf16 5e-2, fp16 1e-2, fp32 5e-3 (CPU autocast as a stand-in measured bf16
2.4e-2, fp16 3.1e-3). Cost: the real V1.1 (1.23 B parameters) at 2/8/32 views of 518x392.

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
MA_FIXTURES = REPO / 'test' / 'fixtures' / 'mapanything'
KEYS = ('pts3d_in_other_view', 'conf', 'pts3d_local', 'conf_local')
#: Largest accepted per-pixel relative error against the CPU float64 run, by compute dtype.
TOLERANCE = {'bfloat16': 1.5e-2, 'float16': 5e-3, 'float32': 5e-3}
#: On the CPU (no autocast, no TF32) float32 must match float64 far closer.
CPU_TOLERANCE = 1e-4
#: MapAnything outputs compared, and their tolerances against the CPU float64 run.
MA_KEYS = ('pts3d', 'depth_along_ray', 'ray_directions', 'conf', 'cam_trans',
           'metric_scaling_factor')
MA_TOLERANCE = {'bfloat16': 5e-2, 'float16': 1e-2, 'float32': 5e-3}


def relative_error(out, ref) -> float:
    """Return the largest per-pixel relative error of ``out`` against ``ref`` (numpy arrays)."""
    import numpy as np
    a, b = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    if a.shape != b.shape:
        raise ValueError(f'shape {a.shape} != reference {b.shape}')
    if a.ndim >= 2 and a.shape[-1] == 3:  # points, rays, translations: compare vectors
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


def ma_views(fixture, run, sfx, device):
    """Return the ``infer`` views of MapAnything fixture run ``run`` (``sfx`` '' or '_f64')."""
    import torch
    views = []
    for i in range(3):
        view = {'img': torch.from_numpy(fixture[f'{run}__img{sfx}'][i:i + 1]).to(device)}
        for key, name in (('intrinsics', f'{run}__intrinsics_in_{i}{sfx}'),
                          ('camera_poses', f'{run}__pose_in_{i}{sfx}')):
            if name in fixture:
                view[key] = torch.from_numpy(fixture[name])[None].to(device)
        if f'{run}__depth_z_in_{i}' in fixture:
            depth = torch.from_numpy(fixture[f'{run}__depth_z_in_{i}'])[None]
            view['depth_z'] = depth.to(device, torch.float64 if sfx else torch.float32)
        if f'{run}__is_metric_scale_in_{i}' in fixture:
            view['is_metric_scale'] = torch.from_numpy(fixture[f'{run}__is_metric_scale_in_{i}'])
        views.append(view)
    return views


def ma_parity(device, dtypes, fixtures=MA_FIXTURES):
    """Run MapAnything fixture A (3 runs) on ``device`` per dtype; compare to CPU fp64."""
    import numpy as np
    import torch

    from aetherscan_ros.models.mapanything import MapAnything
    from aetherscan_ros.models.mapanything.inference import cast_for_autocast
    directory = fixtures / 'parity_a'
    fixture = dict(np.load(directory / 'fixture.npz'))
    runs = ('images', 'priors', 'priors_depth')
    reference = MapAnything.from_pretrained(directory).double()
    refs, upstream = {}, 0.0
    for run in runs:
        out = reference.infer(ma_views(fixture, run, '_f64', 'cpu'), apply_mask=False)
        refs[run] = {k: np.concatenate([o[k].numpy() for o in out]) for k in MA_KEYS}
        upstream = max(upstream, float(np.abs(refs[run]['pts3d']
                                              - fixture[f'{run}__raw_pts3d_f64']).max()))
    rows = []
    for dtype in dtypes:
        model = cast_for_autocast(MapAnything.from_pretrained(directory), dtype).to(device)
        name = str(dtype).replace('torch.', '')
        errors = dict.fromkeys(MA_KEYS, 0.0)
        for run in runs:
            out = model.infer(ma_views(fixture, run, '', device), apply_mask=False,
                              use_amp=dtype != torch.float32,
                              amp_dtype='bf16' if dtype == torch.bfloat16 else 'fp16')
            for key in MA_KEYS:
                got = np.concatenate([o[key].numpy() for o in out])
                errors[key] = max(errors[key], relative_error(got, refs[run][key]))
        tol = MA_TOLERANCE[name] if device.type == 'cuda' else CPU_TOLERANCE
        rows += [{'device': str(device), 'dtype': name, 'output': key, 'max_rel_error': err,
                  'tolerance': tol, 'ok': err <= tol, 'cpu_f64_vs_upstream_f64': upstream}
                 for key, err in errors.items()]
        del model
    return rows


def ma_cost(preset, device, dtype, views, width, repeats):
    """Time MapAnything ``infer`` at each view count (random weights); one row per count."""
    import torch

    from aetherscan_ros.models.mapanything import MapAnything, PRESETS
    from aetherscan_ros.models.mapanything.inference import cast_for_autocast, is_out_of_memory
    from aetherscan_ros.models.mapanything.random_weights import randomize_
    cuda = device.type == 'cuda'
    if cuda:
        torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated(device) if cuda else 0
    with torch.device('meta'):
        model = MapAnything(PRESETS[preset]())
    model = cast_for_autocast(randomize_(model.to_empty(device='cpu')), dtype).to(device).eval()
    weights = (torch.cuda.memory_allocated(device) - base) if cuda else sum(
        p.numel() * p.element_size() for p in model.parameters())
    height = max(14, round(width * 392 / 518 / 14) * 14)
    name = str(dtype).replace('torch.', '')
    rows = []
    for count in views:
        gen = torch.Generator().manual_seed(count)
        imgs = [{'img': torch.randn(1, 3, height, width, generator=gen).to(device)}
                for _ in range(count)]
        row = {'device': str(device), 'dtype': name, 'views': count,
               'size': f'{width}x{height}', 'weights_gb': weights / 1024 ** 3}
        try:
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
            times = []
            for i in range(1 + repeats):
                start = time.perf_counter()  # infer ends with a device->host copy (a sync)
                out = model.infer(imgs, use_amp=dtype != torch.float32,
                                  amp_dtype='bf16' if dtype == torch.bfloat16 else 'fp16')
                if i:
                    times.append(time.perf_counter() - start)
            row['median_s'] = statistics.median(times)
            row['views_per_s'] = count / row['median_s']
            row['finite'] = all(bool(torch.isfinite(o[k]).all()) for o in out
                                for k in ('pts3d', 'conf', 'camera_poses'))
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
    parser.add_argument('--model', default='all', choices=('all', 'fast3r', 'mapanything'),
                        help='which port to check (default: both)')
    parser.add_argument('--preset', default='vitl512', choices=('vitl512', 'tiny'),
                        help='model for the cost part (default: the real ViT-L/512; tiny '
                        'also makes MapAnything use its tiny preset)')
    parser.add_argument('--views', default='2,8,32', help='view counts (default 2,8,32)')
    parser.add_argument('--size', type=int, default=512,
                        help='image width; height = 3/4 of it, a multiple of 16 (default 512)')
    parser.add_argument('--ma-size', type=int, default=518,
                        help='MapAnything image width, a multiple of 14 (518 -> 518x392)')
    parser.add_argument('--repeats', type=int, default=2, help='timed runs after 1 warm-up')
    parser.add_argument('--cpu', action='store_true', help='behave as on a machine without CUDA')
    parser.add_argument('--json', default=str(REPO / 'bench_results' / 'gpu_check.json'),
                        help="where to write the results ('' = nowhere)")
    args = parser.parse_args(argv)
    views = [int(v) for v in args.views.split(',') if v.strip()]
    if args.size < 16 or args.size % 16:
        parser.error(f'--size {args.size}: must be a positive multiple of 16')
    if args.ma_size < 14 or args.ma_size % 14:
        parser.error(f'--ma-size {args.ma_size}: must be a positive multiple of 14')

    import torch

    from aetherscan_ros.models.torch_device import native_bf16
    cuda = torch.cuda.is_available() and not args.cpu
    device = torch.device('cuda', torch.cuda.current_device()) if cuda else torch.device('cpu')
    facts = _facts(torch, device)
    print('gpu_check: ' + ', '.join(f'{k} {v}' for k, v in facts.items()), flush=True)
    halves = (([torch.bfloat16] if native_bf16(device) else []) + [torch.float16] if cuda
              else [torch.float32])
    checked = halves + [torch.float32] if cuda else [torch.float32]
    result = {'facts': facts, 'preset': args.preset, 'parity': [], 'cost': []}
    verdicts, failed = [], []
    if args.model in ('all', 'fast3r'):
        result['parity'] = parity(device, checked)
        _print_parity(result['parity'])
        if cuda or args.preset == 'tiny':
            config = _config(args.preset)
            for dtype in halves:
                result['cost'] += cost(config, device, dtype, views, args.size, args.repeats)
            _print_cost(result['cost'])
        verdicts.append(_verdict(result['parity']))
        failed += [r for r in result['parity'] if not r['ok']]
    if args.model in ('all', 'mapanything'):
        print('MapAnything:')
        ma = {'parity': ma_parity(device, checked), 'cost': []}
        _print_parity(ma['parity'])
        if cuda or args.preset == 'tiny':
            preset = 'giant' if args.preset == 'vitl512' else 'tiny'
            for dtype in halves:
                ma['cost'] += ma_cost(preset, device, dtype, views, args.ma_size, args.repeats)
            _print_cost(ma['cost'])
        result['mapanything'] = ma
        verdicts.append(('mapanything ' if verdicts else '') + _verdict(ma['parity']))
        failed += [r for r in ma['parity'] if not r['ok']]
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1))
        print(f'wrote {path}')
    if not cuda:
        why = '--cpu given' if args.cpu else (
            f'torch {torch.__version__} sees no CUDA device'
            + ('' if torch.version.cuda else ' (a CPU-only build)'))
        print(f'gpu_check: NO GPU ({why}): GPU timings and CUDA parity skipped; {verdicts[0]} '
              'on the CPU in float32 vs float64' + ''.join(f'; {v}' for v in verdicts[1:]))
    else:
        print(f'gpu_check: {"; ".join(verdicts)} on {facts["gpu"]}')
    return 1 if failed else 0


def _verdict(rows):
    bad = [r for r in rows if not r['ok']]
    return (f'parity {"FAILED: " + str(len(bad)) + " check(s)" if bad else "ok"} '
            f'({len(rows)} checks)')


if __name__ == '__main__':
    sys.exit(main())
