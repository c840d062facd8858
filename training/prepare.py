"""Corpus -> SentencePiece tokenizer, token streams, validation split, chat data.

Run on the development machine (needs sentencepiece + numpy; no torch):
    python training/prepare.py            # reads data/corpus-en-prose.txt, writes data/ + models/tokenizer.model

Outputs (data/ is git-ignored):
    models/tokenizer.model        SentencePiece BPE, vocab 4096
    data/train.bin, data/val.bin  uint16 token streams (paragraph tokens + EOS)
    data/chat.bin                 uint16 stream of chat dialogues (training portion only)
    data/meta.json                sizes, split boundaries
    training/heldout_chat.jsonl   50 held-out chat prompts (from the validation blocks)
"""
import json, os, re, random, sys, io
import numpy as np
import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data")
CORPUS = os.path.join(DATA, "corpus-en-prose.txt")
SPM_PATH = os.path.join(ROOT, "models", "tokenizer.model")

UNK, BOS, EOS, PAD = 0, 1, 2, 3
CONTROL = ["<|user|>", "<|assistant|>", "<|end|>"]
USER, ASSISTANT, END = 4, 5, 6

SPEAKER_RE = re.compile(r"^[A-Z][A-Z0-9 ,'&\-]*\.$")


def paragraphs(text):
    """Paragraphs = runs of lines separated by one or more blank (empty or whitespace-only) lines.
    Leading/trailing newlines are removed; empty paragraphs dropped; everything else kept verbatim."""
    out = []
    for p in re.split(r"\n(?:[ \t]*\n)+", text):
        p = p.strip("\n")
        if p.strip():
            out.append(p)
    return out


def train_tokenizer(text):
    lines = [l for l in text.split("\n") if l.strip()]
    os.makedirs(os.path.dirname(SPM_PATH), exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model,
        model_type="bpe", vocab_size=4096, byte_fallback=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, split_digits=True, character_coverage=0.9995,
        unk_id=UNK, bos_id=BOS, eos_id=EOS, pad_id=PAD,
        unk_piece="<unk>", bos_piece="<s>", eos_piece="</s>", pad_piece="<pad>",
        control_symbols=CONTROL, max_sentence_length=1 << 16,
        input_sentence_size=2_000_000, shuffle_input_sentence=True, seed_sentencepiece_size=1_000_000,
        num_threads=os.cpu_count() or 2, minloglevel=1)
    open(SPM_PATH, "wb").write(model.getvalue())


def val_blocks(n):
    b = (n // 50) // 10
    return [(k * n // 10 + b, k * n // 10 + 2 * b) for k in range(10)]


def speech_of(p):
    """(speaker, speech text) if paragraph p is a play speech ('SPEAKER.' line then speech), else None.
    Stage-direction lines ('[...]') are dropped; speech lines are stripped and joined by one space."""
    lines = p.split("\n")
    if len(lines) < 2 or not SPEAKER_RE.match(lines[0].strip()):
        return None
    body = [l.strip() for l in lines[1:] if l.strip() and not l.strip().startswith("[")]
    if not body:
        return None
    s = " ".join(body)
    s = re.sub(r"\s*\[[^\]]*\]\s*", " ", s).strip()
    return (lines[0].strip(), s) if s else None


def encode_dialogue(sp, turns):
    ids = [BOS]
    for u, a in turns:
        ids += [USER] + sp.encode(u) + [END] + [ASSISTANT] + sp.encode(a) + [END]
    return ids


def main():
    text = open(CORPUS, encoding="utf-8").read()
    if not os.path.exists(SPM_PATH) or "--retrain" in sys.argv:
        print("training tokenizer ...", flush=True)
        train_tokenizer(text)
    sp = spm.SentencePieceProcessor(model_file=SPM_PATH)
    assert sp.vocab_size() == 4096 and [sp.piece_to_id(c) for c in CONTROL] == [USER, ASSISTANT, END]

    paras = paragraphs(text)
    print(f"{len(paras)} paragraphs, tokenizing ...", flush=True)
    toks = sp.encode(paras, num_threads=os.cpu_count() or 2)
    lens = np.array([len(t) + 1 for t in toks], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    stream = np.empty(int(lens.sum()), dtype=np.uint16)
    for s, t in zip(starts, toks):
        stream[s:s + len(t)] = t
        stream[s + len(t)] = EOS
    n = len(stream)
    blocks = val_blocks(n)
    is_val = np.zeros(n, dtype=bool)
    for a, b in blocks:
        is_val[a:b] = True
    np.concatenate([stream[a:b] for a, b in blocks]).tofile(os.path.join(DATA, "val.bin"))
    stream[~is_val].tofile(os.path.join(DATA, "train.bin"))
    # paragraph touches validation?
    cum = np.concatenate([[0], np.cumsum(is_val)])
    para_val = (cum[starts + lens] - cum[starts]) > 0

    # chat: runs of consecutive speeches inside the Shakespeare part
    rng = random.Random(1234)
    runs, cur = [], []
    for i, p in enumerate(paras):
        sp_ = speech_of(p)
        if sp_ is None:
            if cur: runs.append(cur); cur = []
            continue
        cur.append((i, sp_[1]))
    if cur: runs.append(cur)
    train_dialogues, heldout = [], []
    MAXU, MAXA = 200, 160
    for run in runs:
        if any(para_val[i] for i, _ in run):
            # held-out candidates: consecutive pairs fully inside validation text
            for (i, u), (j, a) in zip(run, run[1:]):
                if para_val[i] and para_val[j] and 3 <= len(sp.encode(u)) <= 60:
                    heldout.append({"user": u, "reference": a})
            continue
        for off in (0, 1):  # two pairings of the same run (augmentation)
            k = off
            while k + 1 < len(run):
                nturn = rng.randint(1, 4)
                turns = []
                while len(turns) < nturn and k + 1 < len(run):
                    u, a = run[k][1], run[k + 1][1]
                    k += 2
                    if len(sp.encode(u)) > MAXU or len(sp.encode(a)) > MAXA:
                        break
                    turns.append((u, a))
                if turns:
                    train_dialogues.append(encode_dialogue(sp, turns))
    rng.shuffle(train_dialogues)
    chat = np.array([t for d in train_dialogues for t in d], dtype=np.uint16)
    chat.tofile(os.path.join(DATA, "chat.bin"))
    # 50 held-out prompts, evenly spaced over the candidates
    step = len(heldout) / 50
    sel = [heldout[int(i * step)] for i in range(50)]
    with open(os.path.join(ROOT, "training", "heldout_chat.jsonl"), "w", encoding="utf-8") as f:
        for h in sel:
            f.write(json.dumps(h, ensure_ascii=False) + "\n")
    meta = dict(n_tokens=n, n_train=int((~is_val).sum()), n_val=int(is_val.sum()), val_blocks=blocks,
                n_paragraphs=len(paras), n_chat_dialogues=len(train_dialogues), n_chat_tokens=len(chat),
                n_heldout_candidates=len(heldout), vocab_size=sp.vocab_size())
    json.dump(meta, open(os.path.join(DATA, "meta.json"), "w"), indent=1)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
