"""Writes the validation split as text, data/val.txt (git-ignored), for photon-quantize's quality gate.

The split is the fixed one of ../shared/data/README.md and training/prepare.py: the corpus is tokenized
paragraph by paragraph (EOS after each), and the ten blocks [k*n//10 + b, k*n//10 + 2b), b = (n//50)//10,
are validation. Each block is cut at its EOS tokens and every piece decoded back to text; pieces are
written one paragraph each, separated by blank lines, so photon-quantize (which tokenizes paragraph by
paragraph with EOS after each, like prepare.py) gets back (very nearly) the same token stream. The first
and last paragraph of each block are partial, as in the split itself.

    bash training/corpus.sh                 # data/corpus-en-prose.txt
    python scripts/make_val_text.py         # data/val.txt (needs sentencepiece + numpy)
"""
import os, sys
import numpy as np
import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "training"))
from prepare import paragraphs, val_blocks, EOS  # noqa: E402  (the split's own definitions)


def main():
    text = open(os.path.join(ROOT, "data", "corpus-en-prose.txt"), encoding="utf-8").read()
    sp = spm.SentencePieceProcessor(model_file=os.path.join(ROOT, "models", "tokenizer.model"))
    toks = sp.encode(paragraphs(text), num_threads=os.cpu_count() or 2)
    stream = np.fromiter((t for p in toks for t in p + [EOS]), dtype=np.int64)
    n = len(stream)
    out, count = [], 0
    for a, b in val_blocks(n):
        block = stream[a:b].tolist()
        count += len(block)
        piece = []
        for t in block + [EOS]:
            if t == EOS:
                if piece:
                    out.append(sp.decode(piece))
                piece = []
            else:
                piece.append(t)
    path = os.path.join(ROOT, "data", "val.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n\n".join(p for p in out if p.strip()) + "\n")
    print(f"corpus {n} tokens; validation {count} tokens in {len(out)} paragraphs -> {path}")


if __name__ == "__main__":
    main()
