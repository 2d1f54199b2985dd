"""CLIP's byte-pair tokenizer vocabulary, built offline from the BPE file that ``open_clip`` ships.

:func:`clip_vocab_and_merges` builds ``vocab`` / ``merges`` as CLIP builds them (byte symbols, the
same with ``</w>``, one token per merge, then ``<|startoftext|>`` and ``<|endoftext|>``), for all of
CLIP's merges or just the first few hundred; :func:`clip_tokenizer_files` writes the full set as
``vocab.json`` / ``merges.txt`` for ``CLIPTokenizer.from_pretrained``. Used by the tiny diffusers
pipelines (:mod:`genagent_env.testing.tiny_diffusers`) and the tiny OWLv2 detector
(:mod:`genagent_env.testing.tiny_detector`).
"""

from __future__ import annotations

import gzip
import json
import tempfile
from functools import lru_cache
from pathlib import Path

#: How many merges CLIP's tokenizer has (as open_clip's ``SimpleTokenizer`` reads its BPE file).
CLIP_MERGES = 49152 - 256 - 2


def clip_vocab_and_merges(n_merges: int = CLIP_MERGES) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The first ``n_merges`` CLIP merges and the vocabulary they need, built as CLIP builds them."""
    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    with gzip.open(default_bpe(), "rt", encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    merges = [tuple(line.split()) for line in lines[1 : n_merges + 1] if line.strip()]
    byte_symbols = list(bytes_to_unicode().values())
    tokens = [*byte_symbols, *(symbol + "</w>" for symbol in byte_symbols), *("".join(m) for m in merges)]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: index for index, token in enumerate(tokens)}, merges  # type: ignore[return-value]


@lru_cache(maxsize=1)
def clip_tokenizer_files() -> Path:
    """A folder with ``vocab.json`` and ``merges.txt`` of CLIP's tokenizer, made from open_clip's
    bundled BPE file (built once per process)."""
    vocab, merges = clip_vocab_and_merges()
    folder = Path(tempfile.mkdtemp(prefix="genagent-clip-bpe-"))
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n",
                                       encoding="utf-8")
    return folder
