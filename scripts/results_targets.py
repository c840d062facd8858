#!/usr/bin/env python3
"""The targets table of docs/results.md from bench-out/{pg2k,pg2k-b,pg32k,pp8k-photon,pp8k-vanilla,pg128k}.json."""
import json,os
import sys
O=sys.argv[1] if len(sys.argv)>1 else 'bench-out'
def L(n):
    p=f'{O}/{n}.json'
    return json.load(open(p)) if os.path.exists(p) and os.path.getsize(p)>0 else None
def runs(n):
    d=L(n); out={}
    if not d: return out
    for r in d['runs']:
        k='vanilla' if r['kind']=='vanilla' else r['mode']
        out.setdefault(k,r)
    return out
def med(r,k): 
    v=r[k]['median'] if r else None
    return float('nan') if v is None else v
rows=[]
def row(what,target,val,ratio,thr,note=''):
    ok = ratio==ratio and ratio>=thr
    rows.append(f"| {what} | {target} | {val} | **{ratio:,.1f}×** | {'pass' if ok else 'MISS'} {note}|")
def f(x): return f"{x:,.0f}" if x>=100 else (f"{x:.1f}" if x>=10 else f"{x:.2f}")
for name,label in (('pg2k','run A'),('pg2k-b','run B'),('pg2k-c','run C')):
    r=runs(name)
    if not r: continue
    v=med(r['vanilla'],'decode_tps')
    for mode,t,th in (('recgen','≥ 3× (stretch 5×)',3),('hiergen','≥ 2×',2)):
        x=med(r[mode],'decode_tps')
        row(f"{'RecGen' if mode=='recgen' else 'HierGen'} decode at 2K ({label}, 5 reps)",t,f"{f(x)} vs {f(v)} tok/s",x/v,th,'(stretch 5×: '+('pass' if x/v>=5 else 'miss')+')' if mode=='recgen' else '')
for name32,lab32 in (('pg32k','run A'),('pg32k-b','run B')):
  r=runs(name32)
  if r:
      v=med(r['vanilla'],'decode_tps')
      for mode,t,th in (('recgen','≥ 20×',20),('hiergen','≥ 10×',10)):
          x=med(r[mode],'decode_tps')
          row(f"{'RecGen' if mode=='recgen' else 'HierGen'} decode at 32K ({lab32}, 3 reps; vanilla over a filled cache)",t,f"{f(x)} vs {f(v)} tok/s",x/v,th)
      cv=r['vanilla']['cache_bytes_per_sequence']; cp=r['recgen']['cache_bytes_per_sequence']
      row(f"cache memory per sequence at 32K ({lab32})",'≥ 60× smaller',f"{cp/2**20:.2f} MiB vs {cv/2**20:,.1f} MiB",cv/cp,60)
      tv=r['vanilla']['tpm_tps_per_gib']; tp=r['recgen']['tpm_tps_per_gib']; th_=r['hiergen']['tpm_tps_per_gib']
      row(f"TPM at 32K, RecGen ({lab32})",'≥ 1000×',f"{f(tp)} vs {tv:.2f} tok/s per GiB",tp/tv,1000)
      row(f"TPM at 32K, HierGen ({lab32})",'(≥ 1000×)',f"{f(th_)} vs {tv:.2f} tok/s per GiB",th_/tv,1000)
p=runs('pp8k-photon'); v=runs('pp8k-vanilla')
if p and v:
    for mode in ('hiergen',):
        x=med(p[mode],'prefill_tps'); y=med(v['vanilla'],'prefill_tps')
        row("prefill of an 8K prompt (PHOTON 3 reps, vanilla 1)",'≥ 10×',f"{f(x)} vs {f(y)} tok/s ({8192/x:.1f} s vs {8192/y:.0f} s)",x/y,10)
for n128,l128 in (('pg128k','run A'),('pg128k-b','run B')):
  r=runs(n128)
  if r:
      v=med(r['vanilla'],'decode_tps')
      for mode in ('recgen','hiergen'):
          x=med(r[mode],'decode_tps')
          rows.append(f"| {'RecGen' if mode=='recgen' else 'HierGen'} at 128K ({l128}, one run; PHOTON real 128K prefill at {f(med(r[mode],'prefill_tps'))} tok/s, vanilla over a filled cache) | one run each | {f(x)} vs {v:.2f} tok/s decode; cache {r[mode]['cache_bytes_per_sequence']/2**20:.1f} MiB vs {r['vanilla']['cache_bytes_per_sequence']/2**30:.2f} GiB | **{x/v:,.0f}×** | done |")
print("| target | wanted | measured (PHOTON vs vanilla, medians) | ratio | |")
print("| --- | --- | --- | --- | --- |")
print("\n".join(rows))
