# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Run every benchmark module ``bench/bench_*.py``; print one table and write JSON.

Each module exposes ``run(quick: bool) -> list[dict]``; a row has the keys ``group, what, size,
median_s, throughput, baseline, ratio, notes`` (any may be empty). A module that raises is
reported and the others still run; the exit code is then 1.

Usage: ``python -m bench.run_all [--quick] [--only NAME[,NAME]] [--out DIR]``.
"""

import argparse
import datetime
import importlib
import json
import os
from pathlib import Path
import platform
import sys
import time
import traceback

BENCH_DIR = Path(__file__).resolve().parent
ROW_KEYS = ('group', 'what', 'size', 'median_s', 'throughput', 'baseline', 'ratio', 'notes')


def discover(only=None):
    """Return the benchmark module names (``bench_cloud``...), filtered by ``only`` names."""
    names = sorted(p.stem for p in BENCH_DIR.glob('bench_*.py'))
    if only:
        wanted = {w if w.startswith('bench_') else f'bench_{w}' for w in only}
        unknown = wanted - set(names)
        if unknown:
            raise SystemExit(f'unknown benchmark(s) {sorted(unknown)}; available: '
                             f'{", ".join(n[len("bench_"):] for n in names)}')
        names = [n for n in names if n in wanted]
    return names


def _cpu_model():
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts():
    """Return facts that make the numbers comparable (CPU, cores, threads, versions, rmw)."""
    facts = {
        'cpu': _cpu_model(),
        'cores': os.cpu_count(),
        'cores_usable': len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
        else os.cpu_count(),
        'load_avg_1m': round(os.getloadavg()[0], 2) if hasattr(os, 'getloadavg') else None,
        'python': platform.python_version(),
        'platform': platform.platform(),
        'rmw': os.environ.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp (default)'),
        'ros_distro': os.environ.get('ROS_DISTRO', ''),
    }
    try:
        import numpy
        facts['numpy'] = numpy.__version__
    except ImportError:
        pass
    try:
        import torch
        facts['torch'] = torch.__version__
        facts['torch_threads'] = torch.get_num_threads()
        facts['cuda'] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception as exc:  # torch missing or broken: the facts say so
        facts['torch'] = f'unavailable ({type(exc).__name__})'
    return facts


def _fmt(value, kind):
    if value is None or value == '':
        return ''
    if kind == 'time' and isinstance(value, (int, float)):
        if value < 1e-3:
            return f'{value * 1e6:.1f} us'
        if value < 1.0:
            return f'{value * 1e3:.2f} ms'
        return f'{value:.2f} s'
    if kind == 'ratio' and isinstance(value, (int, float)):
        return f'{value:.2f}x'
    return str(value)


def format_table(rows):
    """Return the rows as one aligned text table."""
    header = ('group', 'what', 'size', 'median', 'throughput', 'baseline', 'ratio', 'notes')
    body = [(str(r.get('group', '')), str(r.get('what', '')), str(r.get('size', '')),
             _fmt(r.get('median_s'), 'time'), _fmt(r.get('throughput'), ''),
             str(r.get('baseline', '') or ''), _fmt(r.get('ratio'), 'ratio'),
             str(r.get('notes', '') or '')) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(header)]
    lines = ['  '.join(h.ljust(w) for h, w in zip(header, widths)).rstrip(),
             '  '.join('-' * w for w in widths)]
    for b in body:
        lines.append('  '.join(c.ljust(w) for c, w in zip(b, widths)).rstrip())
    return '\n'.join(lines)


def _normalise(row, module):
    out = {k: row.get(k, '') for k in ROW_KEYS}
    out['group'] = out['group'] or module[len('bench_'):]
    return out


def run(names, quick):
    """Run the modules; return ``(rows, failures)`` where failures maps module -> traceback."""
    rows, failures = [], {}
    for name in names:
        start = time.perf_counter()
        print(f'# {name} ...', file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f'bench.{name}')
            result = module.run(quick)
            rows.extend(_normalise(r, name) for r in result)
        except Exception:  # one failing benchmark must not hide the others
            failures[name] = traceback.format_exc()
            print(f'# {name} FAILED:\n{failures[name]}', file=sys.stderr, flush=True)
            rows.append(_normalise({'what': 'FAILED', 'notes': failures[name].strip()
                                    .splitlines()[-1][:120]}, name))
        print(f'# {name} took {time.perf_counter() - start:.1f} s', file=sys.stderr,
              flush=True)
    return rows, failures


def main(argv=None):
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog='python -m bench.run_all', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='small sizes, few repetitions')
    parser.add_argument('--only', default='',
                        help='comma-separated module names, e.g. cloud,transport')
    parser.add_argument('--out', default='bench_results', help='directory for bench.json')
    args = parser.parse_args(argv)
    names = discover([n.strip() for n in args.only.split(',') if n.strip()])
    if not names:
        print('no benchmark modules found', file=sys.stderr)
        return 1
    started = datetime.datetime.now(datetime.timezone.utc)
    rows, failures = run(names, args.quick)
    facts = machine_facts()
    print(f'\nmachine: {facts["cpu"]}, {facts["cores_usable"]} usable cores, torch threads '
          f'{facts.get("torch_threads", "-")}, python {facts["python"]}, rmw {facts["rmw"]}'
          f'{", " + facts["cuda"] if facts.get("cuda") else ""}'
          f'{" (quick mode)" if args.quick else ""}')
    print(format_table(rows))
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / 'bench.json'
    payload = {'started_utc': started.isoformat(), 'quick': args.quick, 'modules': names,
               'machine': facts, 'rows': rows, 'failures': failures}
    tmp = path.with_suffix('.json.tmp')
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(tmp, path)
    print(f'\nwrote {path}')
    if failures:
        print(f'FAILED modules: {", ".join(sorted(failures))}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
