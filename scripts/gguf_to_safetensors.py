"""One of our float GGUFs -> a training export (safetensors with PyTorch state-dict names, F16), the
inverse of training/export.py's name mapping. Used to check that photon-quantize's safetensors
conversion gives back the shipped files exactly (docs/quantize.md, "Independent checks"):

    python scripts/gguf_to_safetensors.py models/photon-tiny-f16.gguf /tmp/photon-tiny.safetensors
    cargo run --release -p photon-quantize -- /tmp/photon-tiny.safetensors /tmp/photon-tiny-f16.gguf --preset f16 \
        --config training/results/photon-tiny.config.json --tokenizer models/tokenizer.model
    python scripts/check_gguf_python.py models/photon-tiny-f16.gguf /tmp/photon-tiny-f16.gguf

Needs numpy, gguf, safetensors. Every value must be exactly representable in F16 (true of export.py's
files: their F32 tensors hold F16-rounded values).
"""
import os, sys
import numpy as np
import gguf
from safetensors.numpy import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "training"))
import export  # noqa: E402


def main(src, out):
    r = gguf.GGUFReader(src)
    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
    binv = {v: k for k, v in export.BLOCK.items()}
    top = {v: k for k, v in (export.PHOTON_TOP if arch == "photon" else export.LLAMA_TOP).items()}

    def torch(g):
        if g in top:
            return top[g]
        p = g.split(".")
        if arch == "photon":
            if p[1] == "output_norm":
                return f"{p[0]}.norm.weight"
            return f"{p[0]}.blocks.{p[2]}.{binv['.'.join(p[3:])]}"
        return f"stack.blocks.{p[1]}.{binv['.'.join(p[2:])]}"

    sd = {}
    for t in r.tensors:
        n = torch(t.name)
        assert export.gguf_name(arch, n) == t.name, (n, t.name)
        x = np.array(t.data).reshape([int(d) for d in reversed(t.shape)])
        y = x.astype(np.float16)
        assert np.array_equal(y.astype(np.float32), x.astype(np.float32)), f"{t.name} is not exactly F16"
        sd[n] = y
    save_file(sd, out)
    print(len(sd), "tensors ->", out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
