"""Golden fixtures for the runtime's parity tests, computed in float32 on CPU from the committed GGUF files
(weights exactly as committed, i.e. rounded to F16), plus the held-out chat stopping check.

    python training/golden.py                 # writes tests/fixtures/{golden.json,*.logprobs.f32}
    python training/golden.py --heldout       # also runs the 50 held-out chat prompts (HierGen, greedy)

Reference generation is deliberately simple: full recomputation at every step.
"""
import argparse, hashlib, json, os, sys, time
import numpy as np
import torch
import sentencepiece as spm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Photon, Llama, config_from_dict
from export import gguf_name, load_gguf_state

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
BOS, EOS, PAD, USER, ASSISTANT, END = 1, 2, 3, 4, 5, 6
torch.set_num_threads(1)  # one thread: deterministic reductions, and far faster on a busy 2-core machine


def load_model(path):
    cfg, state = load_gguf_state(path)
    c = config_from_dict(cfg)
    m = (Photon if cfg["arch"] == "photon" else Llama)(c)
    names = {gguf_name(cfg["arch"], n): n for n in m.state_dict()}
    sd = {names[g]: torch.from_numpy(v) for g, v in state.items()}
    m.load_state_dict(sd, strict=True)
    return m.float().eval()


def pad16(ids, n):
    L = -(-n // 16) * 16
    return torch.tensor(ids + [PAD] * (L - len(ids)), dtype=torch.long)[None]


@torch.no_grad()
def next_logits_full(m, ids):
    """Logits for the token after ids, by full recomputation (HierGen for PHOTON; vanilla)."""
    n = len(ids)
    if isinstance(m, Photon):
        return m(pad16(ids, n + 1))[0, n]
    return m(torch.tensor(ids)[None])[0, n - 1]


def top2(lg):
    v, i = torch.topk(lg, 2)
    lp = torch.log_softmax(lg.double(), -1)
    return int(i[0]), float(v[0] - v[1]), float(lp[i[0]])


@torch.no_grad()
def generate(m, prompt, mode, max_new, stop=None):
    """Greedy. mode: 'hiergen' | 'recgen' (PHOTON) | 'vanilla'. Returns (tokens, margins, logprobs).
    RecGen: units the prompt completes use X1; every later unit (incl. a partially prompted one, whose
    prompt tokens are forced in G1) uses x_hat from G2 run on its own outputs; latents depend on the prompt only."""
    ids, out, margins, lps = list(prompt), [], [], []
    if mode == "recgen":
        C1 = m.cfg.chunks[0]
        total = len(prompt) + max_new
        xhat, _, _ = m.latents(pad16(ids, total), u_p=len(prompt) // C1)
    cur_u, xh_u = -1, None
    for _ in range(max_new):
        n = len(ids)
        if mode in ("recgen", "hiergen"):
            C1 = m.cfg.chunks[0]
            u = n // C1
            if mode == "recgen":
                xh_u = xhat[:, u:u + 1]
            elif u != cur_u:
                # HierGen: x_hat of unit u from the encoder over units < u (teacher-forced G2); identical to the
                # full recomputation (causality), only cheaper: computed once per unit
                xh_u = m.latents(pad16(ids[:u * C1], u * C1 + 1))[0][:, u:u + 1]
                cur_u = u
            unit = torch.tensor((ids[u * C1:n] + [PAD] * C1)[:C1])[None]
            lg = m.decode1(xh_u, unit)[0, n - u * C1]
        else:
            lg = next_logits_full(m, ids)
        t, mg, lp = top2(lg)
        ids.append(t); out.append(t); margins.append(mg); lps.append(lp)
        if stop is not None and t == stop:
            break
    return out, margins, lps


def chat_prompt(sp, history, user):
    """history: list of (user_text, reply_token_ids). Each text piece encoded on its own (dummy prefix)."""
    ids = [BOS]
    for u, r in history:
        ids += [USER] + sp.encode(u) + [END] + [ASSISTANT] + r
        if not r or r[-1] != END:
            ids.append(END)
    return ids + [USER] + sp.encode(user) + [END] + [ASSISTANT]


def sha256(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--photon", default=os.path.join(ROOT, "models", "photon-tiny-f16.gguf"))
    ap.add_argument("--vanilla", default=os.path.join(ROOT, "models", "vanilla-tiny-f16.gguf"))
    ap.add_argument("--heldout", action="store_true")
    ap.add_argument("--skip-golden", action="store_true")
    ap.add_argument("--out", default=FIX)
    a = ap.parse_args()
    sp = spm.SentencePieceProcessor(model_file=os.path.join(ROOT, "models", "tokenizer.model"))
    ph, va = load_model(a.photon), load_model(a.vanilla)
    os.makedirs(a.out, exist_ok=True)
    if not a.skip_golden:
        val = np.fromfile(os.path.join(ROOT, "data", "val.bin"), dtype=np.uint16).astype(np.int64)
        eos = np.nonzero(val == EOS)[0]
        s0 = int(eos[0]) + 1
        inp = val[s0:s0 + 128].tolist()
        t = torch.tensor(inp)[None]
        man = {"about": "see docs/training.md#golden-fixtures", "dtype": "float32, computed on CPU from the GGUF files",
               "models": {"photon-tiny": {"file": os.path.basename(a.photon), "sha256": sha256(a.photon)},
                          "vanilla-tiny": {"file": os.path.basename(a.vanilla), "sha256": sha256(a.vanilla)}},
               "teacher_forced": {"input_ids": inp, "bos_included": False, "val_offset": s0}}
        with torch.no_grad():
            lg_p, st = ph(t, return_all=True)
            lp_p = torch.log_softmax(lg_p[0].float(), -1)
            lp_v = torch.log_softmax(va(t)[0].float(), -1)
        for name, lp, note in [("photon-tiny", lp_p, "row i = log p(token i | tokens < i); row 0 from s^(2) alone"),
                               ("vanilla-tiny", lp_v, "row i = log p(token i+1 | tokens <= i); the last row predicts past the input")]:
            f = f"{name}.logprobs.f32"
            lp.numpy().astype("<f4").tofile(os.path.join(a.out, f))
            man["teacher_forced"][name] = {"file": f, "shape": list(lp.shape), "layout": "row-major [positions][vocab], little-endian f32", "rows": note}
        units, groups = [0, 1, 5, 17, 31], [0, 1, 3, 7]
        r = lambda x: [round(float(v), 7) for v in x]
        inter = {"x1": {str(u): r(st["x1"][0, u]) for u in units},
                 "x2": {str(g): r(st["x2"][0, g]) for g in groups},
                 "xhat1": {str(u): r(st["xhat"][0, u]) for u in units}}
        # RecGen reconstructions for the same input with the prompt = its first 37 tokens (u_p = 9)
        xr, _, x2r = ph.latents(t, u_p=37 // 4)
        inter["recgen_prompt37"] = {"u_p": 9, "xhat1": {str(u): r(xr[0, u]) for u in [9, 11, 12, 20, 31]},
                                    "x2": {str(g): r(x2r[0, g]) for g in [2, 3, 7]}}
        man["photon_intermediates"] = dict(inter, note="X1 = F1 outputs (after final norm) per unit; X2 = F2 outputs per "
                                           "meta-context; xhat1 = G2 estimates per unit (teacher forced on X1, HierGen). "
                                           "recgen_prompt37: same input, units >= 9 reconstructed recursively (x2[g] there is "
                                           "F2 over chunker(X1 of prompt units / xhat1 of later units))")
        conts = []
        starts = [int(e) + 1 for e in eos[[3, 10, 20]]]
        for plen, s in zip([37, 40, 48], starts):
            prompt = [BOS] + val[s:s + plen - 1].tolist()
            for model, mode in [(ph, "hiergen"), (ph, "recgen"), (va, "vanilla")]:
                t0 = time.time()
                toks, mg, lps = generate(model, prompt, mode, 128)
                conts.append({"model": "vanilla-tiny" if mode == "vanilla" else "photon-tiny", "mode": mode,
                              "prompt": prompt, "tokens": toks, "margins": [round(x, 6) for x in mg],
                              "logprobs": [round(x, 6) for x in lps], "text": sp.decode(toks)})
                print(f"prompt {plen} {mode}: {time.time()-t0:.1f}s min margin {min(mg):.4f} | {sp.decode(toks)[:100]!r}", flush=True)
        man["continuations"] = conts
        turns = ["Good morrow, my lord. What news from the court?", "And what says the king to that?"]
        chats = []
        for model, mode in [(ph, "hiergen"), (ph, "recgen"), (va, "vanilla")]:
            hist, conv = [], []
            for u in turns:
                p = chat_prompt(sp, hist, u)
                toks, mg, lps = generate(model, p, mode, 64, stop=END)
                conv.append({"user": u, "prompt": p, "reply": toks, "margins": [round(x, 6) for x in mg],
                             "logprobs": [round(x, 6) for x in lps], "text": sp.decode([x for x in toks if x != END])})
                hist.append((u, toks))
                print(f"chat {mode}: {sp.decode(toks)!r}", flush=True)
            chats.append({"model": "vanilla-tiny" if mode == "vanilla" else "photon-tiny", "mode": mode, "turns": conv})
        man["chat"] = chats
        man["notes"] = {
            "prompts": "continuation and chat prompts include BOS (id 1) first; teacher-forced input has no BOS",
            "greedy": "argmax, ties to the lowest id; continuations do not stop at EOS; chat replies stop after <|end|> (id 6), max 64",
            "margins": "top-1 minus top-2 logit at each step (f32 logits; equal to the log-prob margin)",
            "logprobs": "log-softmax of the chosen token",
            "chat": "turn-2 prompt = BOS + <|user|> enc(u1) <|end|> <|assistant|> reply1 (+ <|end|> if the reply lacks it) + "
                    "<|user|> enc(u2) <|end|> <|assistant|>; each text piece encoded on its own with the dummy prefix. "
                    "RecGen: the next turn re-encodes the whole history (identical to a fresh RecGen prefill of it)",
            "recgen": "units the prompt completes enter G2 and the chunker as X1; later units (the partial one too) use xhat1; "
                      "prompt tokens of a partial unit are forced in G1"}
        json.dump(man, open(os.path.join(a.out, "golden.json"), "w"), indent=1)
    if a.heldout:
        rows = [json.loads(l) for l in open(os.path.join(ROOT, "training", "heldout_chat.jsonl"))]
        ended, res = 0, []
        for i, r_ in enumerate(rows):
            p = chat_prompt(sp, [], r_["user"])
            toks, _, _ = generate(ph, p, "hiergen", 256, stop=END)
            ok = bool(toks) and toks[-1] == END
            ended += ok
            res.append({"user": r_["user"], "reply": sp.decode([x for x in toks if x != END]), "n_tokens": len(toks), "ended": ok})
            print(f"{i:2d} {ok} {len(toks):3d} {res[-1]['reply'][:90]!r}", flush=True)
        summ = {"prompts": len(rows), "ended_with_end_token": ended, "mode": "hiergen greedy, max 256", "results": res}
        json.dump(summ, open(os.path.join(ROOT, "work-out", "heldout_results.json"), "w"), indent=1)
        print(f"held-out: {ended}/{len(rows)} replies ended with <|end|>")


if __name__ == "__main__":
    main()
