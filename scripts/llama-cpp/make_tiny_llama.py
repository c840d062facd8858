"""Cut the shipped vanilla-tiny F16 model down to its first N blocks, for a small llama.cpp fixture.

    python scripts/llama-cpp/make_tiny_llama.py models/vanilla-tiny-f16.gguf OUT.gguf --blocks 2

Every metadata key is copied (tokenizer and chat template included) except `llama.block_count` and
`general.alignment` (the writer keeps its default of 32);
the token embedding, final norm, LM head and blocks 0..N-1 are copied byte for byte.
"""
import argparse
import gguf
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--blocks", type=int, default=2)
    args = ap.parse_args()

    r = gguf.GGUFReader(args.src)
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(args.out, arch)
    for name, field in r.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", "general.alignment", f"{arch}.block_count"):
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            w.add_key_value(name, field.contents(), vtype, sub_type=field.types[1])
        else:
            w.add_key_value(name, field.contents(), vtype)
    w.add_uint32(f"{arch}.block_count", args.blocks)
    for t in r.tensors:
        if t.name.startswith("blk."):
            if int(t.name.split(".")[1]) >= args.blocks:
                continue
        # GGUFReader gives numpy shapes (outermost first); the writer takes them as they are.
        w.add_tensor(t.name, np.array(t.data), raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
