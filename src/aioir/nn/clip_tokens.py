"""The few CLIP token ids prompt learning needs, without the ``clip`` package.

CLIP's byte-pair vocabulary is built from its merges file (``bpe_simple_vocab_16e6.txt.gz``,
shipped with the ``openai/clip`` package; supplied here as a local file): the 256 byte symbols,
the same with the end-of-word mark ``</w>``, one entry per merge (the first 48,894), then
``<|startoftext|>`` and ``<|endoftext|>``. :func:`word_token_id` finds a lowercase word that is a
single token (e.g. ``"excellent"``) in it; :func:`placeholder_tokens` writes the token ids of a
prompt of ``n`` placeholder tokens, which only fixes where the end-of-text token sits.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor

from aioir.errors import CheckpointError

__all__ = [
    "END_OF_TEXT",
    "START_OF_TEXT",
    "bytes_to_unicode",
    "placeholder_tokens",
    "word_token_id",
]

START_OF_TEXT = 49406
END_OF_TEXT = 49407
#: merges used by CLIP's tokenizer (49,152 − 256 − 2)
MERGES = 48_894


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's (GPT-2's) reversible map of the 256 byte values to printable characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


@lru_cache(maxsize=4)
def _vocabulary(path: str) -> dict[str, int]:
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: CLIP vocabulary file (bpe_simple_vocab_16e6.txt.gz) not found")
    try:
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rt", encoding="utf-8") as f:
            lines = f.read().split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{p}: not a CLIP vocabulary file ({exc})") from exc
    merges = [tuple(line.split()) for line in lines[1 : MERGES + 1]]
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(vocab)}


def word_token_id(vocabulary: str | Path, word: str) -> int:
    """The id of ``word`` when CLIP tokenises it as one token (``ValueError`` otherwise)."""
    token = word.strip().lower() + "</w>"
    ids = _vocabulary(str(vocabulary))
    if token not in ids:
        raise ValueError(f"{word!r} is not a single CLIP token")
    return ids[token]


def placeholder_tokens(n: int, rows: int = 1, context_length: int = 77) -> Tensor:
    """Token ids ``[SOT, X × n, EOT, 0 …]`` (``rows×context_length``) of a prompt of ``n``
    placeholders (``X`` is id 343, as CLIP tokenises it); the end-of-text token is at ``n+1``."""
    if not 1 <= n <= context_length - 2:
        raise ValueError(f"a prompt holds 1 to {context_length - 2} tokens, not {n}")
    tokens = torch.zeros(rows, context_length, dtype=torch.long)
    tokens[:, 0] = START_OF_TEXT
    tokens[:, 1 : n + 1] = 343
    tokens[:, n + 1] = END_OF_TEXT
    return tokens
