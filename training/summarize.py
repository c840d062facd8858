"""Print a markdown table of results.json files: python training/summarize.py DIR/*/results.json"""
import json, sys

rows = {}
for f in sys.argv[1:]:
    try:
        rows.update(json.load(open(f)))
    except Exception as e:
        print(f"# {f}: {e}")
print("| run | params | alpha | L_rec | steps | train tokens | val PPL (HierGen) | RecGen P=32 | P=128 | P=256 |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for n, r in rows.items():
    g = lambda k: f"{r[k]:.2f}" if k in r else "–"
    print(f"| {n} | {r['params']:,} | {r['alpha']} | {r['rec_form'] or '–'} | {r['steps']} | {r['train_tokens']:,} | "
          f"{r['ppl']:.2f} | {g('recgen_ppl_P32')} | {g('recgen_ppl_P128')} | {g('recgen_ppl_P256')} |")
