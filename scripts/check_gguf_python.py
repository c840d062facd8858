"""Independent check of photon-quantize's output with the `gguf` Python package (PyPI).

    pip install numpy==2.4.6 gguf==0.19.0
    python scripts/check_gguf_python.py models/photon-tiny-f16.gguf models/photon-tiny-q8_0.gguf models/photon-tiny-q4_0.gguf

The first file is the float source; every further file is read with gguf.GGUFReader and checked:
the metadata equals the source's except general.file_type (llama.cpp's value for the tensor types
found) and general.quantization_version = 2; tensors have the same names and shapes; F32/F16 tensors
hold the source's values exactly (norms, biases, start latent); Q8_0/Q4_0 tensors are byte for byte
what gguf's own numpy quantizers (gguf.quants.quantize, an independent implementation of ggml's
reference) make of the source values; and gguf's dequantizer reads them back with the expected error.
Exit status 0 when every file passes.
"""
import sys
import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

FTYPE = {T.F32: 0, T.F16: 1, T.Q4_0: 2, T.Q8_0: 7}


def fields(r):
    out = {}
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            continue
        t = f.types[0]
        if t == gguf.GGUFValueType.ARRAY:
            if f.types[1] == gguf.GGUFValueType.STRING:
                out[k] = [bytes(f.parts[i]).decode() for i in f.data]
            else:
                out[k] = [f.parts[i][0].item() for i in f.data]
        elif t == gguf.GGUFValueType.STRING:
            out[k] = bytes(f.parts[f.data[0]]).decode()
        else:
            out[k] = f.parts[f.data[0]][0].item()
    return out


def values(t):
    """Source tensor as float32 in PyTorch order."""
    return gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape([int(x) for x in reversed(t.shape)])


def check(src_path, path):
    src, out = gguf.GGUFReader(src_path), gguf.GGUFReader(path)
    fs, fo = fields(src), fields(out)
    errs = []
    for k in set(fs) | set(fo):
        if k in ("general.file_type", "general.quantization_version"):
            continue
        if fs.get(k) != fo.get(k):
            errs.append(f"metadata {k} differs")
    if fo.get("general.quantization_version") != 2:
        errs.append("general.quantization_version is not 2")
    st = {t.name: t for t in src.tensors}
    counts, worst = {}, {}
    for t in out.tensors:
        s = st.get(t.name)
        if s is None:
            errs.append(f"tensor {t.name} not in the source")
            continue
        if list(s.shape) != list(t.shape):
            errs.append(f"tensor {t.name} shape {list(t.shape)} vs {list(s.shape)}")
            continue
        ty = T(t.tensor_type)
        counts[ty.name] = counts.get(ty.name, 0) + 1
        x = values(s)
        if ty in (T.Q8_0, T.Q4_0):
            ref = gguf.quants.quantize(x, ty)
            if ref.tobytes() != bytes(t.data.tobytes()):
                nb = np.sum(ref.reshape(-1) != np.asarray(t.data).reshape(-1))
                errs.append(f"tensor {t.name}: {ty.name} bytes differ from gguf.quants.quantize ({nb} bytes)")
        y = gguf.quants.dequantize(t.data, ty).astype(np.float32).reshape(x.shape)
        rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) or 1.0
        rel = float(np.sqrt(np.mean((y.astype(np.float64) - x) ** 2))) / rms
        worst[ty.name] = max(worst.get(ty.name, 0.0), rel)
        if ty in (T.F32, T.F16) and T(s.tensor_type) in (T.F32, T.F16) and not np.array_equal(x, y):
            errs.append(f"tensor {t.name}: {ty.name} values differ from the source")
    if len(out.tensors) != len(src.tensors):
        errs.append(f"{len(out.tensors)} tensors, source has {len(src.tensors)}")
    mats = [T(t.tensor_type) for t in out.tensors if len(t.shape) > 1]
    main = max(set(mats), key=mats.count)
    if fo.get("general.file_type") != FTYPE[main]:
        errs.append(f"general.file_type {fo.get('general.file_type')} but most matrices are {main.name}")
    rels = ", ".join(f"{k} {v:.2e}" for k, v in sorted(worst.items()))
    status = "OK" if not errs else "FAILED"
    print(f"{status} {path}: {len(out.tensors)} tensors {counts}, file_type {fo.get('general.file_type')}, "
          f"worst rel RMSE per type: {rels}")
    for e in errs[:20]:
        print("   ", e)
    return not errs


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    ok = all([check(sys.argv[1], p) for p in sys.argv[2:]])
    sys.exit(0 if ok else 1)
