"""safetensors (F16) + config.json -> GGUF (F16 matrices; F32 norms, biases, s^(2)) per docs/format.md.

Runs on the development machine (numpy + gguf + safetensors + sentencepiece; no torch):
    python training/export.py --weights work-out/gpu/photon-tiny.safetensors \
        --config work-out/gpu/photon-tiny.config.json --name photon-tiny --out models/photon-tiny-f16.gguf
"""
import argparse, json, os, re, sys
import numpy as np
import sentencepiece as spm
from safetensors.numpy import load_file
import gguf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# chat format: stored as plain per-role prefix/suffix strings (control-token names are matched to the
# control tokens by the runtime; every other text piece is encoded on its own, with the dummy prefix)
CHAT = {"user_prefix": "<|user|>", "user_suffix": "<|end|>",
        "assistant_prefix": "<|assistant|>", "assistant_suffix": "<|end|>"}
CHAT_TEMPLATE = ("{{ bos_token }}{% for message in messages %}"
                 "{% if message['role'] == 'user' %}{{ '<|user|>' + message['content'] + '<|end|>' }}"
                 "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>' + message['content'] + '<|end|>' }}"
                 "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}")

BLOCK = {"attn_norm.weight": "attn_norm.weight", "attn.q.weight": "attn_q.weight", "attn.k.weight": "attn_k.weight",
         "attn.v.weight": "attn_v.weight", "attn.o.weight": "attn_output.weight", "ffn_norm.weight": "ffn_norm.weight",
         "ffn.gate.weight": "ffn_gate.weight", "ffn.up.weight": "ffn_up.weight", "ffn.down.weight": "ffn_down.weight"}
PHOTON_TOP = {"enc_embd.weight": "enc.token_embd.weight", "chunk2_norm.weight": "chunk2.norm.weight",
              "chunk2.weight": "chunk2.weight", "chunk2.bias": "chunk2.bias", "dec2_start": "dec2.start",
              "dec2_conv.weight": "dec2.conv.weight", "dec2_conv.bias": "dec2.conv.bias",
              "dec1_conv.weight": "dec1.conv.weight", "dec1_conv.bias": "dec1.conv.bias",
              "dec1_embd.weight": "dec1.token_embd.weight", "output.weight": "output.weight"}
LLAMA_TOP = {"embd.weight": "token_embd.weight", "stack.norm.weight": "output_norm.weight", "output.weight": "output.weight"}


def gguf_name(arch, name):
    """PyTorch state-dict name -> GGUF tensor name (docs/format.md)."""
    if arch == "photon":
        if name in PHOTON_TOP:
            return PHOTON_TOP[name]
        m = re.match(r"^(enc1|enc2|dec2|dec1)\.(?:blocks\.(\d+)\.(.+)|norm\.weight)$", name)
        if m and m.group(2) is None:
            return f"{m.group(1)}.output_norm.weight"
        if m:
            return f"{m.group(1)}.blk.{m.group(2)}.{BLOCK[m.group(3)]}"
    else:
        if name in LLAMA_TOP:
            return LLAMA_TOP[name]
        m = re.match(r"^stack\.blocks\.(\d+)\.(.+)$", name)
        if m:
            return f"blk.{m.group(1)}.{BLOCK[m.group(2)]}"
    raise KeyError(name)


def torch_name_map(arch, names):
    return {gguf_name(arch, n): n for n in names}


def keep_f32(gname):
    return gname.endswith("norm.weight") or gname.endswith(".bias") or gname == "dec2.start"


def add_tokenizer(w, sp_path):
    sp = spm.SentencePieceProcessor(model_file=sp_path)
    toks, scores, types = [], [], []
    for i in range(sp.vocab_size()):
        toks.append(sp.id_to_piece(i).encode("utf-8"))
        scores.append(float(sp.get_score(i)))
        types.append(2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i) else 1)
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(sp.bos_id()); w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id()); w.add_pad_token_id(sp.pad_id())
    w.add_eot_token_id(sp.piece_to_id("<|end|>"))
    w.add_add_bos_token(True); w.add_add_eos_token(False)
    w.add_add_space_prefix(True)   # models/tokenizer.model: add_dummy_prefix = true
    w.add_chat_template(CHAT_TEMPLATE)
    return sp.vocab_size()


def export(weights, config, name, out, sp_path=os.path.join(ROOT, "models", "tokenizer.model")):
    cfg = json.load(open(config))
    sd = load_file(weights)
    arch = cfg["arch"]
    A = arch
    w = gguf.GGUFWriter(out, arch)
    w.add_custom_alignment(64)
    w.add_name(name)
    w.add_file_type(1)  # mostly F16
    U32 = lambda k, v: w.add_uint32(k, int(v))
    U32(f"{A}.context_length", cfg["context_length"])
    U32(f"{A}.embedding_length", cfg["d"])
    U32(f"{A}.feed_forward_length", cfg["ffn"])
    U32(f"{A}.attention.head_count", cfg["n_heads"])
    U32(f"{A}.attention.head_count_kv", cfg["n_heads"])
    w.add_float32(f"{A}.attention.layer_norm_rms_epsilon", 1e-5)
    w.add_float32(f"{A}.rope.freq_base", 10000.0)
    U32(f"{A}.rope.dimension_count", 64)
    U32(f"{A}.vocab_size", cfg["vocab_size"])
    if arch == "photon":
        L = cfg["layers"]
        assert len(set(L)) == 1, "block_count assumes equal stacks"
        U32("photon.block_count", L[0])
        U32("photon.levels", cfg["levels"])
        w.add_key_value("photon.chunk_sizes", [int(c) for c in cfg["chunks"]], gguf.GGUFValueType.ARRAY,
                        sub_type=gguf.GGUFValueType.UINT32)
        U32("photon.prefix_length", cfg["prefix"])
        U32("photon.enc1.window", cfg["window1"])
        for s, n in zip(["enc1", "enc2", "dec2", "dec1"], L):
            U32(f"photon.{s}.block_count", n)
    else:
        U32("llama.block_count", cfg["n_layers"])
    for k, v in CHAT.items():
        w.add_string(f"photon.chat.{k}", v)
    nv = add_tokenizer(w, sp_path)
    assert nv == cfg["vocab_size"]
    for tname, arr in sd.items():
        g = gguf_name(arch, tname)
        a = arr.astype(np.float32) if keep_f32(g) else arr.astype(np.float16)
        w.add_tensor(g, np.ascontiguousarray(a))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


def load_gguf_state(path):
    """GGUF -> (config dict, {torch name: float32 numpy}) (for golden.py: weights exactly as committed)."""
    r = gguf.GGUFReader(path)
    f = {k: r.fields[k] for k in r.fields}
    def val(k):
        fl = f[k]
        if fl.types[0] == gguf.GGUFValueType.ARRAY:
            return [int(fl.parts[i][0]) for i in fl.data]
        if fl.types[0] == gguf.GGUFValueType.STRING:
            return bytes(fl.parts[fl.data[0]]).decode()
        return fl.parts[fl.data[0]][0].item()
    arch = val("general.architecture")
    cfg = dict(arch=arch, vocab_size=val(f"{arch}.vocab_size"), d=val(f"{arch}.embedding_length"),
               n_heads=val(f"{arch}.attention.head_count"), ffn=val(f"{arch}.feed_forward_length"),
               context_length=val(f"{arch}.context_length"))
    if arch == "photon":
        cfg.update(layers=[val(f"photon.{s}.block_count") for s in ["enc1", "enc2", "dec2", "dec1"]],
                   chunks=val("photon.chunk_sizes"), window1=val("photon.enc1.window"),
                   prefix=val("photon.prefix_length"), levels=val("photon.levels"))
    else:
        cfg.update(n_layers=val("llama.block_count"))
    state = {}
    for t in r.tensors:
        shape = [int(x) for x in reversed(t.shape.tolist())]
        state[t.name] = np.array(t.data, dtype=np.float32).reshape(shape)
    return cfg, state


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    export(a.weights, a.config, a.name, a.out)
    print("wrote", a.out, os.path.getsize(a.out), "bytes")
