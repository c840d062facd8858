"""Train PHOTON / vanilla models side by side on identical batches; evaluate; save F16 safetensors.

One process trains every model named in --runs in lockstep (same batches, same step count, same
schedule), so that e.g. photon-tiny and vanilla-tiny see exactly the same tokens.

    python training/train.py --runs photon-tiny,vanilla-tiny --time-budget 400 --out work-out/main
    python training/train.py --runs photon-tiny --steps 20 --batch 2 --seq 256 --device cpu   # smoke test

Data (from prepare.py): data/train.bin, data/val.bin, data/chat.bin (uint16).
"""
import argparse, json, math, os, time
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from model import PhotonConfig, LlamaConfig, build, count_params

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = dict(vocab_size=4096, d=256, n_heads=4, ffn=704)
RUNS = {
    # name: (config, alpha, L_rec form)
    "photon-tiny": (PhotonConfig(**TINY, layers=[3, 3, 3, 3], chunks=[4, 4], window1=4), 0.0, "shared"),
    "vanilla-tiny": (LlamaConfig(**TINY, n_layers=12), 0.0, None),
    "a0.1-shared": (PhotonConfig(**TINY, layers=[3, 3, 3, 3]), 0.1, "shared"),
    "a0.1-isolated": (PhotonConfig(**TINY, layers=[3, 3, 3, 3]), 0.1, "isolated"),
    "a0.3-shared": (PhotonConfig(**TINY, layers=[3, 3, 3, 3]), 0.3, "shared"),
    "a0.3-isolated": (PhotonConfig(**TINY, layers=[3, 3, 3, 3]), 0.3, "isolated"),
    "w1-unbounded": (PhotonConfig(**TINY, layers=[3, 3, 3, 3], window1=0), 0.0, "shared"),
    "chunks-2x2": (PhotonConfig(vocab_size=4096, d=256, n_heads=4, ffn=704, layers=[3, 3, 3, 3], chunks=[2, 2], window1=8), 0.0, "shared"),
    # smoke-test size
    "toy-photon": (PhotonConfig(vocab_size=4096, d=64, n_heads=1, ffn=128, layers=[1, 1, 1, 1]), 0.1, "isolated"),
    "toy-vanilla": (LlamaConfig(vocab_size=4096, d=64, n_heads=1, ffn=128, n_layers=4), 0.0, None),
}


def load(name):
    return np.fromfile(os.path.join(ROOT, "data", name), dtype=np.uint16)


class Batches:
    """Random crops of T tokens; each row is a chat crop with probability chat_frac."""

    def __init__(self, train, chat, T, B, chat_frac, seed):
        self.train, self.chat, self.T, self.B, self.f = train, chat, T, B, chat_frac
        self.rng = np.random.default_rng(seed)

    def next(self):
        rows = []
        for _ in range(self.B):
            src = self.chat if self.rng.random() < self.f else self.train
            s = int(self.rng.integers(0, len(src) - self.T))
            rows.append(src[s:s + self.T].astype(np.int64))
        return torch.from_numpy(np.stack(rows))


def lr_at(step, total, lr, warmup, final_frac=0.1):
    if step < warmup:
        return lr * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * p)))


def val_windows(val, T):
    n = len(val) // T
    return torch.from_numpy(val[:n * T].astype(np.int64).reshape(n, T))


@torch.no_grad()
def evaluate(model, windows, device, bs=24, recgen_prompts=(32, 128, 256)):
    """HierGen / vanilla PPL: mean CE over tokens 1..T-1 of each window.
    RecGen PPL (PHOTON): latents of units after a P-token prompt come from the recursive stream
    (G2 on its own outputs, chunker/F2 advanced from x_hat); tokens teacher-forced inside units;
    scored tokens P..T-1."""
    model.eval()
    is_photon = hasattr(model, "latents")
    tot, cnt = 0.0, 0
    rec = {P: [0.0, 0] for P in recgen_prompts if P < windows.shape[1]} if is_photon else {}
    for i in range(0, len(windows), bs):
        t = windows[i:i + bs].to(device)
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=device.startswith("cuda")):
            logits = model(t)
            if is_photon:
                lp, tg = logits[:, 1:], t[:, 1:]
            else:
                lp, tg = logits[:, :-1], t[:, 1:]
            tot += F.cross_entropy(lp.float().reshape(-1, lp.shape[-1]), tg.reshape(-1), reduction="sum").item()
            cnt += tg.numel()
            for P in rec:
                C1 = model.cfg.chunks[0]
                xhat, _, _ = model.latents(t, u_p=P // C1)
                lg = model.decode1(xhat, t)[:, P:]
                rec[P][0] += F.cross_entropy(lg.float().reshape(-1, lg.shape[-1]), t[:, P:].reshape(-1), reduction="sum").item()
                rec[P][1] += t[:, P:].numel()
    model.train()
    out = {"ppl": math.exp(tot / cnt), "val_tokens_scored": cnt}
    for P, (s, c) in rec.items():
        out[f"recgen_ppl_P{P}"] = math.exp(s / c)
    return out


def save_f16(model, cfg, out_dir, name, extra):
    os.makedirs(out_dir, exist_ok=True)
    sd = {k: v.detach().to(torch.float16).cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(out_dir, f"{name}.safetensors"))
    c = cfg.__dict__.copy(); c.update(extra)
    json.dump(c, open(os.path.join(out_dir, f"{name}.config.json"), "w"), indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="photon-tiny,vanilla-tiny")
    ap.add_argument("--steps", type=int, default=0, help="fixed step count (0: size from --time-budget)")
    ap.add_argument("--time-budget", type=float, default=400.0, help="seconds of training when --steps=0")
    ap.add_argument("--max-steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--chat-frac", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default=os.path.join(ROOT, "work-out", "run"))
    ap.add_argument("--save", default="", help="comma list of runs whose F16 weights are written")
    ap.add_argument("--ckpt-every", type=int, default=0)
    ap.add_argument("--eval-windows", type=int, default=0, help="limit validation windows (0: all)")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--deadline", type=float, default=0, help="hard stop of training after this many seconds (0: none)")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True
    os.makedirs(a.out, exist_ok=True)
    names = a.runs.split(",")
    dev = a.device
    models, opts = {}, {}
    for n in names:
        cfg, alpha, form = RUNS[n]
        cfg = type(cfg)(**{**cfg.__dict__, "context_length": a.seq})
        m = build(cfg, seed=a.seed).to(dev)
        decay = [p for pn, p in m.named_parameters() if p.dim() >= 2]
        nodecay = [p for pn, p in m.named_parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": nodecay, "weight_decay": 0.0}],
                                lr=a.lr, betas=(0.9, 0.95), eps=1e-8, fused=dev.startswith("cuda"))
        models[n] = (m, cfg, alpha, form); opts[n] = opt
        print(f"{n}: {count_params(m):,} parameters (excl. s^(2)), alpha={alpha} form={form}", flush=True)
    train, chat, val = load("train.bin"), load("chat.bin"), load("val.bin")
    batches = Batches(train, chat, a.seq, a.batch, a.chat_frac, a.seed)
    windows = val_windows(val, a.seq)
    if a.eval_windows:
        windows = windows[:a.eval_windows]
    total = a.steps if a.steps else a.max_steps
    t0 = time.time(); tmeas = None
    log = open(os.path.join(a.out, "train_log.tsv"), "w")
    hdr = "step\tlr\ttokens\telapsed_s\t" + "\t".join(f"{n}:ce\t{n}:rec" for n in names)
    log.write(hdr + "\n"); print(hdr, flush=True)
    step = 0
    while step < total:
        if not a.steps:
            if step == 40:
                if dev.startswith("cuda"): torch.cuda.synchronize()
                tmeas = time.time()
            if step == 80:
                if dev.startswith("cuda"): torch.cuda.synchronize()
                dt = (time.time() - tmeas) / 40
                left = a.time_budget - (time.time() - t0)
                total = min(a.max_steps, 80 + int(0.97 * left / dt))
                print(f"# {dt*1000:.1f} ms/step -> {total} steps", flush=True)
            if time.time() - t0 > a.time_budget * 1.15:
                print(f"# deadline: stopping at step {step} of {total}", flush=True)
                break
        if a.deadline and time.time() - t0 > a.deadline:
            print(f"# hard deadline: stopping at step {step} of {total}", flush=True)
            break
        lr = lr_at(step, total, a.lr, a.warmup)
        x = batches.next().to(dev, non_blocking=True)
        stats = {}
        for n, (m, cfg, alpha, form) in models.items():
            for g in opts[n].param_groups: g["lr"] = lr
            with torch.autocast(device_type=dev.split(":")[0], dtype=torch.bfloat16, enabled=dev.startswith("cuda")):
                if cfg.arch == "photon":
                    loss, st = m.loss(x, alpha=alpha, rec_form=form)
                else:
                    loss, st = m.loss(x)
            opts[n].zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), a.clip)
            opts[n].step()
            stats[n] = st
        step += 1
        if step % a.log_every == 0 or step == 1 or step == total:
            row = f"{step}\t{lr:.2e}\t{step*a.batch*a.seq}\t{time.time()-t0:.0f}\t" + "\t".join(
                f"{stats[n]['ce'].item():.4f}\t{stats[n].get('rec', torch.tensor(float('nan'))).item():.4f}" for n in names)
            log.write(row + "\n"); log.flush(); print(row, flush=True)
        if a.ckpt_every and step % a.ckpt_every == 0:
            for n, (m, *_r) in models.items():
                torch.save({"model": m.state_dict(), "opt": opts[n].state_dict(), "step": step}, os.path.join(a.out, f"{n}.ckpt.pt"))
    train_time = time.time() - t0
    for n, (m, cfg, alpha, form) in models.items():  # save first: evaluation can be redone from the weights
        if n in a.save.split(","):
            save_f16(m, cfg, a.out, n, dict(trained_steps=step, trained_tokens=step * a.batch * a.seq, alpha=alpha,
                                            rec_form=form, batch=a.batch, lr=a.lr, warmup=a.warmup, seed=a.seed,
                                            chat_frac=a.chat_frac))
    results = {}
    for n, (m, cfg, alpha, form) in models.items():
        te = time.time()
        r = evaluate(m, windows, dev)
        r.update(dict(run=n, params=count_params(m), params_with_start=count_params(m, False), alpha=alpha, rec_form=form,
                      steps=step, train_tokens=step * a.batch * a.seq, batch=a.batch, seq=a.seq, lr=a.lr,
                      train_seconds=round(train_time, 1), eval_seconds=round(time.time() - te, 1),
                      final_train_ce=stats[n]["ce"].item(), final_train_rec=stats[n].get("rec", torch.tensor(float("nan"))).item()))
        results[n] = r
        print(json.dumps(r), flush=True)
        json.dump(results, open(os.path.join(a.out, "results.json"), "w"), indent=1)
    if dev.startswith("cuda"):
        print(f"# peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB", flush=True)
    json.dump(results, open(os.path.join(a.out, "results.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
