#!/usr/bin/env python3
"""Plot decode tokens/s and cache memory per sequence against context length, PHOTON (HierGen,
RecGen) against vanilla, from photon-bench JSON outputs (-o json). Standard library only.

    python3 scripts/plot_results.py OUT.svg bench-out/sweep.json bench-out/pg2k.json ...

Every run with n_gen > 0 and parallel == 1 contributes a point at context = n_prompt + n_gen/2
(the middle of the decoded range); where several files give the same point the last wins.
"""
import json
import math
import sys

COLORS = {"hiergen": "#1f77b4", "recgen": "#2ca02c", "vanilla": "#d62728"}
LABELS = {"hiergen": "PHOTON HierGen", "recgen": "PHOTON RecGen", "vanilla": "vanilla"}


def load(paths):
    pts = {}
    for p in paths:
        for r in json.load(open(p))["runs"]:
            if r["n_gen"] == 0 or r["parallel"] != 1:
                continue
            key = "vanilla" if r["kind"] == "vanilla" else r["mode"]
            ctx = r["n_prompt"] + r["n_gen"] // 2
            tps = r["decode_tps"]["median"]
            mem = r["cache_bytes_per_sequence"]
            if tps and tps == tps:
                pts.setdefault(key, {})[ctx] = (tps, mem)
    return pts


def panel(x0, y0, w, h, series, ylabel, title, idx, fmt):
    out = []
    xs = [x for s in series.values() for x in s]
    ys = [v[idx] for s in series.values() for v in s.values()]
    lx0, lx1 = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
    ly0, ly1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    if ly1 == ly0:
        ly1 += 1
    X = lambda x: x0 + (math.log10(x) - lx0) / (lx1 - lx0) * w
    Y = lambda y: y0 + h - (math.log10(y) - ly0) / (ly1 - ly0) * h
    out.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#444"/>')
    for e in range(lx0, lx1 + 1):
        x = X(10 ** e)
        out.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + h}" stroke="#ddd"/>')
        lab = f"{10 ** e // 10 ** 6}M" if e >= 6 else (f"{10 ** e // 1000}K" if e >= 3 else str(10 ** e))
        out.append(f'<text x="{x:.1f}" y="{y0 + h + 16}" text-anchor="middle">{lab}</text>')
    for e in range(ly0, ly1 + 1):
        y = Y(10 ** e)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + w}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{fmt(10 ** e)}</text>')
    out.append(f'<text x="{x0 + w / 2}" y="{y0 - 10}" text-anchor="middle" font-weight="bold">{title}</text>')
    out.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 34}" text-anchor="middle">context (tokens)</text>')
    out.append(f'<text transform="translate({x0 - 52},{y0 + h / 2}) rotate(-90)" text-anchor="middle">{ylabel}</text>')
    for key, s in series.items():
        pts = sorted(s.items())
        path = " ".join(f"{X(x):.1f},{Y(v[idx]):.1f}" for x, v in pts)
        c = COLORS.get(key, "#000")
        out.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"/>')
        for x, v in pts:
            out.append(f'<circle cx="{X(x):.1f}" cy="{Y(v[idx]):.1f}" r="3" fill="{c}"/>')
    return out


def bytes_fmt(b):
    for unit, s in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if b >= unit:
            return f"{b / unit:g} {s}"
    return f"{b:g} B"


def main():
    out_path, paths = sys.argv[1], sys.argv[2:]
    series = load(paths)
    W, H = 900, 400
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>']
    svg += panel(80, 40, 330, 290, series, "decode tokens/s", "Decode speed (2 threads, Q4_0)", 0,
                 lambda v: f"{v:g}")
    svg += panel(540, 40, 330, 290, series, "cache bytes per sequence", "Cache memory (f16)", 1, bytes_fmt)
    lx = 90
    for key in ("recgen", "hiergen", "vanilla"):
        if key in series:
            svg.append(f'<rect x="{lx}" y="{H - 22}" width="14" height="4" fill="{COLORS[key]}"/>')
            svg.append(f'<text x="{lx + 20}" y="{H - 16}">{LABELS[key]}</text>')
            lx += 160
    svg.append("</svg>")
    open(out_path, "w").write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
