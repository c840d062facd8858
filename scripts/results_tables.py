#!/usr/bin/env python3
"""Markdown tables of docs/results.md from photon-bench JSON outputs in bench-out/NAME.json (run from the repo root).
    python3 scripts/results_tables.py pg2k pg32k ...   # one detail table per name"""
import json,sys,os
O='bench-out'
def load(n):
    p=f'{O}/{n}.json'
    return json.load(open(p)) if os.path.exists(p) and os.path.getsize(p)>0 else None
def f(x,d=None):
    if x is None or x!=x: return '–'
    if d is not None: return f"{x:.{d}f}"
    return f"{x:,.0f}" if x>=100 else (f"{x:.1f}" if x>=10 else f"{x:.2f}")
def mib(b): return f"{b/2**20:,.2f} MiB" if b>=2**20 else f"{b/1024:.1f} KiB"
def name(r): return 'vanilla' if r['kind']=='vanilla' else ('PHOTON '+('HierGen' if r['mode']=='hiergen' else 'RecGen'))
def detail(n):
    d=load(n)
    if not d: print(f"({n}: missing)\n"); return
    print(f"`{n}`: load {d['machine_start']['loadavg'][:14]} → {d['machine_end']['loadavg'][:14]}; probe "+", ".join(f"{p['gbs']:.1f} GB/s ({p['threads']} thr)" for p in d['probe_gbs'])+"\n")
    print("| model | thr | test | reps | prefill tok/s (min–max) | decode tok/s (min–max) | weight B/tok | cache B read/tok | GB/s | % probe | cache / seq | peak RSS | TPM (tok/s/GiB) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in d['runs']:
        sh=r['probe_share']
        sh=float('nan') if sh is None else sh
        for k in ('achieved_gbs','tpm_tps_per_gib'):
            r[k]=float('nan') if r[k] is None else r[k]
        for k in ('prefill_tps','decode_tps'):
            for q in ('median','min','max'):
                r[k][q]=float('nan') if r[k][q] is None else r[k][q]
        pt=r['prefill_tps'];dt=r['decode_tps']
        pp='filled' if r['prefill_filled'] else (f"{f(pt['median'])} ({f(pt['min'])}–{f(pt['max'])})" if pt['median']==pt['median'] else '–')
        tg=f"{f(dt['median'])} ({f(dt['min'])}–{f(dt['max'])})" if dt['median']==dt['median'] else '–'
        print(f"| {name(r)} | {r['threads']} | {r['test']} | {r['reps']} | {pp} | {tg} | {r['weight_bytes_per_token']/1e6:.1f} MB | {r['cache_bytes_read_per_token']/1e6:.2f} MB | {f(r['achieved_gbs'],1)} | {(f(sh*100,0)+'%') if sh==sh else '–'} | {mib(r['cache_bytes_per_sequence'])} | {r['peak_rss_bytes']/2**20:.0f} MiB | {f(r['tpm_tps_per_gib'])} |")
    print()
for n in sys.argv[1:]: detail(n)
