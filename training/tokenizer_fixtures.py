"""Golden tokenization fixtures from the sentencepiece package: tests/fixtures/tokenizer.json.

    python training/tokenizer_fixtures.py
ids are sp.encode(text) exactly: NO BOS/EOS added; the dummy prefix (add_dummy_prefix=true) applies.
"""
import json, os
import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = [
    "", " ", "  ", "\n", "\t", "a", "Hello world", "Hello, world!", " leading space", "trailing space ",
    "multiple   spaces   inside", "   three leading", "line one\nline two", "para one\n\npara two", "tab\tseparated\tvalues",
    "HAMLET.\nTo be, or not to be, that is the question:", "KING OF FRANCE.", "LADY MACBETH.\nOut, damned spot!",
    "FIRST CITIZEN.\nBefore we proceed any further, hear me speak.",
    "In the beginning God created the heaven and the earth.", "Numbers 1234567890 and 3.14159",
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
    "café résumé naïve", "Straße", "em—dash and en–dash", "“curly quotes” and ‘single’", "日本語のテキスト", "中文",
    "emoji 😀 🎭", "mixed: Ünïcödé ✓ → ∞", "\u00a0non-breaking\u00a0space", "zero\u200bwidth", "<|user|>", "<|end|> not special",
    "<s> </s> <unk> <pad>", "back\\slash and \"double\" 'single'", "CAPITALS AND lower", "a\r\nwindows newline",
    "   ", "The end.\n", "x" * 40, "Thou art more lovely and more temperate:\n  Rough winds do shake the darling buds of May,",
]


def main():
    sp = spm.SentencePieceProcessor(model_file=os.path.join(ROOT, "models", "tokenizer.model"))
    out = {"model": "models/tokenizer.model", "bos_included": False, "eos_included": False, "add_dummy_prefix": True,
           "note": "ids = sentencepiece encode(text) with no BOS/EOS; pieces for reading only; decode(ids) == text unless noted",
           "cases": []}
    for t in CASES:
        ids = sp.encode(t)
        out["cases"].append({"text": t, "ids": ids, "pieces": [sp.id_to_piece(i) for i in ids], "decoded": sp.decode(ids)})
    os.makedirs(os.path.join(ROOT, "tests", "fixtures"), exist_ok=True)
    json.dump(out, open(os.path.join(ROOT, "tests", "fixtures", "tokenizer.json"), "w", encoding="utf-8"), ensure_ascii=False, indent=1)
    print(len(CASES), "cases")


if __name__ == "__main__":
    main()
