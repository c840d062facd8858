"""PyTorch reference for PHOTON (docs: ../../shared/docs/photon-model.md) and the vanilla LLaMA baseline.

Numerics (both models, every stack): RMSNorm eps 1e-5 computed in f32; attention with head size 64,
one KV head per query head, scale 1/8, causal; RoPE base 10000 rotating ADJACENT pairs
(x[2i], x[2i+1]) with angle pos * 10000^(-2i/64) in f32; SwiGLU FFN W2(SiLU(W1 x) * W3 x);
no biases except the converters' and the level-2 chunker's.
"""
import math
from dataclasses import dataclass, field, asdict
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 1e-5
HEAD = 64


@dataclass
class PhotonConfig:
    vocab_size: int = 4096
    d: int = 256
    n_heads: int = 4
    ffn: int = 704
    layers: List[int] = field(default_factory=lambda: [3, 3, 3, 3])  # enc1, enc2, dec2, dec1
    chunks: List[int] = field(default_factory=lambda: [4, 4])          # C1, C2
    window1: int = 4            # F1 attention window in level-1 units; 0 = unbounded
    prefix: int = 2             # R
    levels: int = 2
    context_length: int = 2048
    arch: str = "photon"


@dataclass
class LlamaConfig:
    vocab_size: int = 4096
    d: int = 256
    n_heads: int = 4
    ffn: int = 704
    n_layers: int = 12
    context_length: int = 2048
    arch: str = "llama"


def config_from_dict(d):
    d = dict(d)
    return PhotonConfig(**d) if d.get("arch") == "photon" else LlamaConfig(**d)


class RMSNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + EPS) * self.weight.float()
        return y.to(x.dtype) if x.dtype != torch.float32 else y


def rope_tables(n, device):
    inv = 10000.0 ** (-(torch.arange(0, HEAD, 2, device=device, dtype=torch.float32)) / HEAD)  # [32]
    ang = torch.arange(n, device=device, dtype=torch.float32)[:, None] * inv[None, :]      # [n,32]
    return torch.cos(ang), torch.sin(ang)


def apply_rope(x, cos, sin):
    """x [..., T, 64]; rotate adjacent pairs (x[2i], x[2i+1]) by angle[T, i]."""
    xf = x.float().unflatten(-1, (HEAD // 2, 2))
    x0, x1 = xf[..., 0], xf[..., 1]
    out = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)
    return out.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, d, n_heads):
        super().__init__()
        assert d == n_heads * HEAD, "head size must be 64"
        self.h = n_heads
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d, bias=False)
        self.o = nn.Linear(d, d, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, D = x.shape
        q = self.q(x).view(B, T, self.h, HEAD).transpose(1, 2)
        k = self.k(x).view(B, T, self.h, HEAD).transpose(1, 2)
        v = self.v(x).view(B, T, self.h, HEAD).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0 / math.sqrt(HEAD))
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0 / math.sqrt(HEAD))
        return self.o(y.transpose(1, 2).reshape(B, T, D))


class FFN(nn.Module):
    def __init__(self, d, i):
        super().__init__()
        self.gate = nn.Linear(d, i, bias=False)  # W1
        self.up = nn.Linear(d, i, bias=False)    # W3
        self.down = nn.Linear(i, d, bias=False)  # W2

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, d, h, i):
        super().__init__()
        self.attn_norm = RMSNorm(d)
        self.attn = Attention(d, h)
        self.ffn_norm = RMSNorm(d)
        self.ffn = FFN(d, i)

    def forward(self, x, cos, sin, mask):
        x = x + self.attn(self.attn_norm(x), cos, sin, mask)
        return x + self.ffn(self.ffn_norm(x))


class Stack(nn.Module):
    """LLaMA stack: pre-norm blocks + final RMSNorm. Positions 0..T-1; optional sliding window."""

    def __init__(self, d, h, i, n):
        super().__init__()
        self.blocks = nn.ModuleList([Block(d, h, i) for _ in range(n)])
        self.norm = RMSNorm(d)

    def forward(self, x, window=0):
        T = x.shape[1]
        cos, sin = rope_tables(T, x.device)
        mask = None
        if window and window < T:
            i = torch.arange(T, device=x.device)
            off = i[:, None] - i[None, :]
            mask = (off >= 0) & (off < window)
        for b in self.blocks:
            x = b(x, cos, sin, mask)
        return self.norm(x)


def _init(module, n_layers_for_scale, std=0.02):
    for name, p in module.named_parameters():
        if name.endswith("norm.weight"):
            continue
        if p.dim() == 1:
            nn.init.zeros_(p) if "bias" in name else nn.init.normal_(p, std=std)
        elif name.endswith("attn.o.weight") or name.endswith("ffn.down.weight"):
            nn.init.normal_(p, std=std / math.sqrt(2 * n_layers_for_scale))
        else:
            nn.init.normal_(p, std=std)


class Llama(nn.Module):
    def __init__(self, cfg: LlamaConfig, seed=0):
        super().__init__()
        self.cfg = cfg
        self.embd = nn.Embedding(cfg.vocab_size, cfg.d)
        self.stack = Stack(cfg.d, cfg.n_heads, cfg.ffn, cfg.n_layers)
        self.output = nn.Linear(cfg.d, cfg.vocab_size, bias=False)
        g = torch.random.fork_rng(devices=[])
        with g:
            torch.manual_seed(seed)
            _init(self, cfg.n_layers)

    def forward(self, tokens):
        """tokens [B,T] -> logits [B,T,V]; row i predicts token i+1."""
        return self.output(self.stack(self.embd(tokens)))

    def loss(self, tokens):
        logits = self.forward(tokens)
        ce = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
        return ce, {"ce": ce.detach()}


class Photon(nn.Module):
    def __init__(self, cfg: PhotonConfig, seed=0):
        super().__init__()
        assert cfg.levels == 2, "only L = 2 is implemented"
        self.cfg = cfg
        D, H, I = cfg.d, cfg.n_heads, cfg.ffn
        C1, C2 = cfg.chunks
        R = cfg.prefix
        assert D % C1 == 0
        self.enc_embd = nn.Embedding(cfg.vocab_size, D // C1)           # E_enc
        self.enc1 = Stack(D, H, I, cfg.layers[0])                       # F1
        self.chunk2_norm = RMSNorm(C2 * D)
        self.chunk2 = nn.Linear(C2 * D, D, bias=True)                   # W_c, b_c
        self.enc2 = Stack(D, H, I, cfg.layers[1])                       # F2
        self.dec2_start = nn.Parameter(torch.zeros(D))                  # s^(2)
        self.dec2_conv = nn.Linear(D, R * D, bias=True)                 # U2
        self.dec2 = Stack(D, H, I, cfg.layers[2])                       # G2
        self.dec1_conv = nn.Linear(D, R * D, bias=True)                 # U1
        self.dec1_embd = nn.Embedding(cfg.vocab_size, D)                # E_dec
        self.dec1 = Stack(D, H, I, cfg.layers[3])                       # G1
        self.output = nn.Linear(D, cfg.vocab_size, bias=False)          # LM head (untied)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            _init(self, max(cfg.layers))

    # ---- encoder ----
    def encode1(self, tokens):
        """tokens [B,T] (T multiple of C1) -> X1 [B,T/C1,D]."""
        B, T = tokens.shape
        C1 = self.cfg.chunks[0]
        a1 = self.enc_embd(tokens).reshape(B, T // C1, self.cfg.d)
        return self.enc1(a1, window=self.cfg.window1)

    def chunk(self, x1_groups):
        """x1_groups [B,G,C2,D] -> A2 [B,G,D]."""
        B, G, C2, D = x1_groups.shape
        return self.chunk2(self.chunk2_norm(x1_groups.reshape(B, G, C2 * D)))

    def encode2(self, a2):
        return self.enc2(a2)

    def conds2(self, x2, n_groups):
        """condition of meta-context g: X2_{g-1}, s^(2) for g=0 -> [B,n_groups,D]."""
        B = x2.shape[0]
        start = self.dec2_start.to(x2.dtype).view(1, 1, -1).expand(B, 1, -1)
        return torch.cat([start, x2[:, :n_groups - 1]], 1)

    def g2_pass(self, cond, inputs):
        """cond [B,G,D]; inputs [B,G,C2,D] (level-1 states of the chunk's units; the last is unused)
        -> x_hat [B,G,C2,D]: output at local position R-1+j estimates unit j."""
        B, G, C2, D = inputs.shape
        R = self.cfg.prefix
        pre = self.dec2_conv(cond).reshape(B, G, R, D)
        seq = torch.cat([pre.to(inputs.dtype) if pre.dtype != inputs.dtype else pre, inputs[:, :, :C2 - 1]], 2)
        out = self.dec2(seq.reshape(B * G, R + C2 - 1, D))
        return out[:, R - 1:].reshape(B, G, C2, D)

    # ---- level-1 decoder ----
    def decode1(self, xhat, tokens):
        """xhat [B,N1,D] conditions; tokens [B,N1*C1] -> logits [B,T,V] (position i predicts token i)."""
        B, N1, D = xhat.shape
        C1, R = self.cfg.chunks[0], self.cfg.prefix
        pre = self.dec1_conv(xhat).reshape(B, N1, R, D)
        emb = self.dec1_embd(tokens).reshape(B, N1, C1, D)[:, :, :C1 - 1]
        seq = torch.cat([pre, emb.to(pre.dtype) if emb.dtype != pre.dtype else emb], 2)
        out = self.dec1(seq.reshape(B * N1, R + C1 - 1, D))[:, R - 1:]
        return self.output(out.reshape(B, N1 * C1, D))

    # ---- full teacher-forced pass (training, HierGen scoring) ----
    def forward(self, tokens, return_all=False):
        B, T = tokens.shape
        C1, C2 = self.cfg.chunks
        assert T % (C1 * C2) == 0
        x1 = self.encode1(tokens)                                  # [B,N1,D]
        N1 = x1.shape[1]; G = N1 // C2
        x1g = x1.reshape(B, G, C2, -1)
        x2 = self.encode2(self.chunk(x1g))                         # [B,G,D]
        cond = self.conds2(x2, G)
        xhat = self.g2_pass(cond, x1g)                             # [B,G,C2,D]
        logits = self.decode1(xhat.reshape(B, N1, -1), tokens)
        if return_all:
            return logits, dict(x1=x1, x2=x2, xhat=xhat.reshape(B, N1, -1), cond=cond)
        return logits

    def loss(self, tokens, alpha=0.0, rec_form="shared"):
        logits, st = self.forward(tokens, return_all=True)
        ce = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tokens.reshape(-1))
        x1 = st["x1"].detach().float()
        if rec_form == "shared" or alpha == 0:
            xh = st["xhat"].float()
        else:  # isolated: second G2 pass over detached inputs; never changes the encoder
            B, N1, D = st["x1"].shape
            C2 = self.cfg.chunks[1]
            xh = self.g2_pass(st["cond"].detach(), st["x1"].detach().reshape(B, N1 // C2, C2, D)).reshape(B, N1, D).float()
        lrec = (1 - F.cosine_similarity(xh, x1, dim=-1)).mean()
        loss = ce + alpha * lrec if alpha > 0 else ce
        return loss, {"ce": ce.detach(), "rec": lrec.detach()}

    # ---- latents with RecGen substitution ----
    @torch.no_grad()
    def latents(self, tokens, u_p=None):
        """Level-1 conditions x_hat for every unit of tokens [B,T] (T multiple of C1*C2).
        Units < u_p are prompt-complete: they enter G2 and the chunker as encoder states X1.
        Units >= u_p (u_p=None: none) are reconstructed recursively: G2 runs on its own outputs,
        the chunker and F2 advance from x_hat (RecGen). Returns (xhat [B,N1,D], x1, x2)."""
        B, T = tokens.shape
        C1, C2 = self.cfg.chunks
        x1 = self.encode1(tokens)
        N1 = x1.shape[1]; G = N1 // C2; D = x1.shape[2]
        if u_p is None or u_p >= N1:
            x1g = x1.reshape(B, G, C2, D)
            x2 = self.encode2(self.chunk(x1g))
            return self.g2_pass(self.conds2(x2, G), x1g).reshape(B, N1, D), x1, x2
        g_p = u_p // C2
        x1g = x1.reshape(B, G, C2, D)
        a2 = [self.chunk(x1g[:, :g_p])] if g_p > 0 else []
        xh = []
        if g_p > 0:
            x2p = self.encode2(a2[0])
            xh.append(self.g2_pass(self.conds2(x2p, g_p), x1g[:, :g_p]).reshape(B, g_p * C2, D))
            x2_last = x2p[:, -1:]
        else:
            x2_last = self.dec2_start.view(1, 1, D).expand(B, 1, D).to(x1.dtype)
        R = self.cfg.prefix
        x2_all = None
        for g in range(g_p, G):
            pre = self.dec2_conv(x2_last).reshape(B, R, D)
            ins = []
            for j in range(C2):
                u = g * C2 + j
                seq = torch.cat([pre] + [t[:, None] for t in ins], 1)
                est = self.dec2(seq)[:, R - 1 + j]
                xh.append(est[:, None])
                ins.append(x1[:, u] if u < u_p else est)
            a2.append(self.chunk(torch.stack(ins, 1)[:, None]))
            x2_all = self.encode2(torch.cat(a2, 1))           # full recompute (F2 is causal)
            x2_last = x2_all[:, -1:]
        xhat = torch.cat(xh, 1)
        return xhat, x1, x2_all


def count_params(model, exclude_start=True):
    return sum(p.numel() for n, p in model.named_parameters() if not (exclude_start and n == "dec2_start"))


def build(cfg, seed=0):
    return Photon(cfg, seed) if isinstance(cfg, PhotonConfig) else Llama(cfg, seed)
