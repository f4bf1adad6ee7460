"""The reader's fine-tuning stage on its own: labelled lessons in, an int8 ONNX reader out.

It needs only torch, transformers, tokenizers, onnx and ONNX Runtime (no index, no Chroma), so the same code runs
inside `citeqa train` on this machine's CPU and, as `python -m lab.finetune`, on any machine with a GPU, from the
lessons `citeqa train --lessons-only FILE` wrote. A GPU only makes it faster: the recipe is the same.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from qa.question import names
from qa.reader import Candidate, encode


@dataclass(frozen=True)
class Lesson:
    """One learning question: the sentence holding its gold answer (none for an unanswerable question) with the
    answer's characters in it, and the retrieval's best wrong sentences, best first (the hardest negatives)."""

    question: str
    answer: Candidate | None
    span: tuple[int, int] | None
    wrong: tuple[Candidate, ...]
    doc: str = ""  # the document the question is about: the decision is fitted on documents the reader never saw


@dataclass(frozen=True)
class Pair:
    question: str
    candidate: Candidate
    relevant: bool
    answer: tuple[int, int] | None  # characters of the gold answer in the candidate sentence


@dataclass(frozen=True)
class Recipe:
    """How the reader learns; `citeqa train` and `python -m lab.finetune` both default to these."""

    seed: int = 13
    # 4 wrong sentences a question and 2 passes: 8 and 3 (2.8x the work) ranked the calibration articles no better
    # (right sentence first 0.827 against 0.829, GPU runs of 2026-11-27)
    negatives: int = 4
    epochs: int = 2
    # The embeddings and this many of the lowest layers kept as the base has them (0: all learn). A CPU step takes
    # 1.4 s instead of 2.1 with 2 frozen (this machine, 2026-11-28), but one pass with 2 frozen and `perturbed` 0.5
    # measured worse than this recipe (cited 0.667 / abstain_ok 0.444 / sa_f1 0.479 against 0.677 / 0.464 / 0.551).
    frozen: int = 0
    batch: int = 32  # pairs a step, about: a question's sentences stay in one batch (32 // 5 = 6 questions)
    learning_rate: float = 6e-5  # the usual range for fine-tuning MiniLM (2e-5..1e-4); warm-up then linear decay
    span_weight: float = 0.5  # the start/end loss beside the relevance loss
    # The loss of choosing among a question's sentences or "none of them", beside the per-sentence ones: with it the
    # calibration articles' abstention went from 0.26 to 0.38 abstain_ok at 0.12 false_abstain (0.829 → 0.837 right
    # sentence first); without it relevance is learned sentence by sentence, on no common scale across questions.
    choice_weight: float = 1.0
    # The share of answerable questions also learned changed (`perturbed`) into ones their own answer sentence
    # does not answer, that sentence then the hardest wrong one: SQuAD 2.0's unanswerable questions are of that kind.
    # Off: tried only together with `frozen` 2 and one pass on the CPU (above); a GPU session can try it alone.
    perturbed: float = 0.0


# How an answerable question becomes one its answer sentence does not answer, the way SQuAD 2.0's unanswerable
# questions were written (Rajpurkar, Jia and Liang 2018: entity swaps, changed numbers among them). The replacement is
# never in any sentence of the lesson, so none of them answers the changed question.
# Each rule, what it changes, and an example (sentence / question → changed question):
# - number: a number the answer sentence holds gets another last digit:
#   "Sky+HD was in 4,222,000 homes" / How many homes had Sky+HD by 2012? → … by 2015?
# - name: a name the answer sentence holds becomes a name from another lesson's sentences:
#   "Michael Grade criticized the operations" / Who criticized the Select Committee? → Who criticized the Amazon?
_NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*(?![\w])")


def perturbed(lesson: Lesson, foreign_names: list[str], rng: random.Random) -> Lesson | None:
    """The question changed by one of the rules above so that no sentence of the lesson answers it; None when no
    rule applies (no number or name of the question is in its answer sentence)."""
    if lesson.answer is None:
        return None
    sentence = lesson.answer.sentence
    lesson_text = " ".join([sentence, lesson.answer.context, *(w.sentence for w in lesson.wrong)])
    changes = []
    for match in _NUMBER.finditer(lesson.question):
        if match.group() in sentence:
            last = int(match.group()[-1])
            digit = str((last + rng.randrange(1, 10)) % 10)
            changes.append((match.start(), match.end(), match.group()[:-1] + digit))
    for name in names(lesson.question):
        if name in sentence and name in lesson.question:  # `names` reads normalized text: keep exact substrings
            start = lesson.question.index(name)
            changes += [(start, start + len(name), other) for other in rng.sample(foreign_names, min(3, len(
                foreign_names)))]
    changes = [c for c in changes if c[2] not in lesson_text]
    if not changes:
        return None
    start, end, new = rng.choice(changes)
    question = lesson.question[:start] + new + lesson.question[end:]
    return Lesson(question, None, None, (lesson.answer, *lesson.wrong), lesson.doc)


def perturbations(lessons: list[Lesson], recipe: Recipe) -> list[Lesson]:
    """`recipe.perturbed` of the answerable lessons, each changed by one rule where one applies."""
    rng = random.Random(recipe.seed)
    pool = sorted({name for lesson in lessons for wrong in lesson.wrong for name in names(wrong.sentence)})
    chosen = [lesson for lesson in lessons if lesson.answer is not None and rng.random() < recipe.perturbed]
    return [changed for lesson in chosen if (changed := perturbed(lesson, pool, rng)) is not None]


def save_lessons(path: Path, lessons: list[Lesson]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for lesson in lessons:
            out.write(json.dumps(asdict(lesson), ensure_ascii=False) + "\n")


def load_lessons(path: Path) -> list[Lesson]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return [Lesson(r["question"], Candidate(**r["answer"]) if r["answer"] else None,
                   tuple(r["span"]) if r["span"] else None, tuple(Candidate(**c) for c in r["wrong"]),
                   r.get("doc", "")) for r in rows]


LEARNED_FROM = "learned_from.json"  # beside a fine-tuned reader: the documents its lessons came from


def write_learned_from(out: Path, lessons: list[Lesson]) -> None:
    """Which documents the reader learned from, for `citeqa train --reader-from` to fit the decision elsewhere."""
    docs = sorted({lesson.doc for lesson in lessons if lesson.doc})
    (out / LEARNED_FROM).write_text(json.dumps(docs, indent=1) + "\n", encoding="utf-8")


def sentences_of(lesson: Lesson, recipe: Recipe) -> list[Pair]:
    """The question's hardest wrong sentences, then the answering one (if any)."""
    pairs = [Pair(lesson.question, wrong, False, None) for wrong in lesson.wrong[:recipe.negatives]]
    if lesson.answer is not None:
        pairs.append(Pair(lesson.question, lesson.answer, True, lesson.span))
    return pairs


def choice_loss(group: list[Lesson], relevance: torch.Tensor, no_answer: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    """Per question, a softmax over "none answers" and its sentences, the right choice being the answering sentence
    or "none": it teaches relevance on one scale across questions, which is what deciding to abstain compares."""
    losses, offset = [], 0
    for lesson in group:
        count = len(sentences_of(lesson, recipe))
        choices = torch.cat([no_answer, relevance[offset:offset + count]])
        target = count if lesson.answer is not None else 0  # the answering sentence comes last
        losses.append(torch.nn.functional.cross_entropy(choices[None], torch.tensor([target], device=choices.device)))
        offset += count
    return torch.stack(losses).mean()


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def fine_tune(lessons: list[Lesson], base: Path, recipe: Recipe, say: Callable[[str], None]) -> torch.nn.Module:
    """The reader's two heads and its encoder, trained together on relevance and answer position."""
    from tokenizers import Tokenizer

    torch.manual_seed(recipe.seed)
    where = device()
    tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    model = ReaderNet.from_base(base).to(where)
    model.freeze(recipe.frozen)
    model.train()
    usable = [lesson for lesson in lessons if lesson.wrong or lesson.answer is not None]
    changed = perturbations(usable, recipe)
    usable += changed
    say(f"reader: {sum(len(sentences_of(x, recipe)) for x in usable)} pairs "
        f"({sum(x.answer is not None for x in usable)} answering) from {len(usable)} questions "
        f"({len(changed)} of them changed into unanswerable ones), {recipe.epochs} epochs on {where.type}")
    batches = lesson_batches(usable, recipe)
    steps = len(batches) * recipe.epochs
    no_answer = torch.nn.Parameter(torch.zeros(1, device=where))  # the logit of "none of these sentences answers"
    learned = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([*learned, no_answer], lr=recipe.learning_rate, weight_decay=0.01)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / max(1, steps - warmup))))
    started, step, recent = time.perf_counter(), 0, []
    for epoch in range(recipe.epochs):
        for group in random.Random(recipe.seed + epoch).sample(batches, len(batches)):
            batch = [pair for lesson in group for pair in sentences_of(lesson, recipe)]
            inputs, relevant, answering, starts, ends = (t.to(where) for t in tensors(tokenizer, batch))
            relevance, start, end = model(*inputs[:3])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(relevance, relevant)
            if answering.any():
                allowed = inputs[3][answering].bool()
                low = torch.finfo(start.dtype).min / 4
                loss = loss + recipe.span_weight * (
                    torch.nn.functional.cross_entropy(start[answering].masked_fill(~allowed, low), starts[answering])
                    + torch.nn.functional.cross_entropy(end[answering].masked_fill(~allowed, low), ends[answering]))
            loss = loss + recipe.choice_weight * choice_loss(group, relevance, no_answer, recipe)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(learned, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            recent = (recent + [loss.item()])[-50:]
            if step % 50 == 0 or step == steps:
                elapsed = time.perf_counter() - started
                say(f"learning: step {step}/{steps} loss {np.mean(recent):.3f} "
                    f"{elapsed:.0f} s, about {elapsed / step * (steps - step):.0f} s to go")
    model.eval()
    return model.cpu()


def lesson_batches(lessons: list[Lesson], recipe: Recipe) -> list[list[Lesson]]:
    """Questions whose sentences together make about `batch` pairs, of like length (less padding), in random
    order."""
    def length(lesson: Lesson) -> int:
        return len(lesson.question) + max(len(p.candidate.sentence) + len(p.candidate.context)
                                          for p in sentences_of(lesson, recipe))

    ordered = sorted(lessons, key=length)
    size = max(1, recipe.batch // (recipe.negatives + 1))
    batches = [ordered[i:i + size] for i in range(0, len(ordered), size)]
    random.Random(recipe.seed).shuffle(batches)
    return batches


def tensors(tokenizer, batch: list[Pair]):
    """Model inputs and labels for a batch; a gold answer's tokens are the ones its characters touch."""
    encoded = [encode(tokenizer, p.question, [p.candidate]) for p in batch]
    width = max(e.ids.shape[1] for e in encoded)
    ids, mask, types = (torch.zeros((len(batch), width), dtype=torch.long) for _ in range(3))
    allowed = torch.zeros((len(batch), width), dtype=torch.bool)
    starts, ends = torch.zeros(len(batch), dtype=torch.long), torch.zeros(len(batch), dtype=torch.long)
    relevant = torch.tensor([float(p.relevant) for p in batch])
    located = torch.zeros(len(batch), dtype=torch.bool)
    for i, (pair, e) in enumerate(zip(batch, encoded, strict=True)):
        n = e.ids.shape[1]
        ids[i, :n], mask[i, :n], types[i, :n] = (torch.from_numpy(a[0]) for a in (e.ids, e.mask, e.types))
        allowed[i, :n] = torch.from_numpy(e.answerable[0])
        if pair.relevant:
            s, t = pair.answer
            inside = [k for k in range(n) if e.answerable[0, k] and e.offsets[0, k, 1] > s and e.offsets[0, k, 0] < t]
            if inside:  # else the answer was cut off with the sentence's end: learn relevance only
                starts[i], ends[i], located[i] = inside[0], inside[-1], True
    return torch.stack([ids, mask, types, allowed.long()]), relevant, located, starts, ends


class ReaderNet(torch.nn.Module):
    """MiniLM with a relevance head on [CLS] and a start/end head on every token (what `qa.reader` runs)."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder
        width = encoder.config.hidden_size
        self.relevance = torch.nn.Linear(width, 1)
        self.span = torch.nn.Linear(width, 2)

    @classmethod
    def from_base(cls, folder: Path) -> ReaderNet:
        from transformers import AutoModel

        return cls(AutoModel.from_pretrained(str(folder), attn_implementation="eager", dtype=torch.float32))

    def freeze(self, layers: int) -> None:
        """Keeps the embeddings and the lowest `layers` layers as the base model has them: no gradients through
        them (a third less work a step) and no drift in the word and position vectors 10k questions cannot teach."""
        if layers <= 0:
            return
        for part in [self.encoder.embeddings, *self.encoder.encoder.layer[:layers]]:
            part.requires_grad_(False)

    def forward(self, ids, mask, types):
        hidden = self.encoder(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        start, end = self.span(hidden).unbind(-1)
        return self.relevance(hidden[:, 0]).squeeze(-1), start, end


def export(model: torch.nn.Module, base: Path, out: Path, scratch: Path) -> None:
    """ONNX graph with the encoder's weights quantized to int8 (a quarter of the size, about twice as fast on two
    cores), and the base tokenizer beside it. The two heads stay in fp32: the relevance logit is a small difference
    that per-tensor int8 activations wipe out (seen: gold and wrong sentences 0.1 apart after quantizing
    everything). The fp32 graph is kept in `scratch`, not shipped."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out.mkdir(parents=True, exist_ok=True)
    scratch.mkdir(parents=True, exist_ok=True)
    full = scratch / "model-fp32.onnx"
    example = tuple(torch.ones((2, 16), dtype=torch.long) for _ in range(3))
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        torch.onnx.export(model, example, str(full), input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["relevance", "start", "end"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                        "relevance": {0: "batch"}, "start": axes, "end": axes})
    heads = [n.name for n in onnx.load(str(full)).graph.node if n.name.startswith(("/relevance/", "/span/"))]
    heads += [f"{name}_MatMul" for name in heads]  # ONNX Runtime splits a Gemm into a MatMul of that name
    quantize_dynamic(str(full), str(out / "model.onnx"), weight_type=QuantType.QInt8, nodes_to_exclude=heads)
    shutil.copyfile(base / "tokenizer.json", out / "tokenizer.json")


def main(argv: list[str] | None = None) -> int:
    defaults = Recipe()
    parser = argparse.ArgumentParser(
        prog="python -m lab.finetune", description="Fine-tunes the reader from lessons written by "
        "`citeqa train --lessons-only FILE` (on a GPU when there is one); then `citeqa train --reader-from DIR` "
        "calibrates and measures it.")
    parser.add_argument("lessons", type=Path, help="the lessons file (JSON lines, gzip)")
    parser.add_argument("--base", type=Path, required=True, help="the base model's folder (all-MiniLM-L6-v2)")
    parser.add_argument("--out", type=Path, required=True, help="where model.onnx and tokenizer.json go")
    for name in ("seed", "negatives", "epochs", "batch", "frozen"):
        parser.add_argument(f"--{name}", type=int, default=getattr(defaults, name),
                            help=f"default {getattr(defaults, name)}")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--choice-weight", type=float, default=defaults.choice_weight)
    parser.add_argument("--perturbed", type=float, default=defaults.perturbed,
                        help=f"share of answerable questions also learned changed into unanswerable ones "
                        f"(default {defaults.perturbed})")
    args = parser.parse_args(argv)
    if not args.lessons.is_file():
        parser.error(f"no lessons file at {args.lessons}: `citeqa train --lessons-only FILE` writes one")
    if not (args.base / "config.json").is_file():
        parser.error(f"no model in {args.base}: give the folder of all-MiniLM-L6-v2 (config.json, model.safetensors)")
    recipe = Recipe(args.seed, args.negatives, args.epochs, args.frozen, args.batch, args.learning_rate,
                    choice_weight=args.choice_weight, perturbed=args.perturbed)
    lessons = load_lessons(args.lessons)
    model = fine_tune(lessons, args.base, recipe, lambda line: print(line, flush=True))
    export(model, args.base, args.out, args.out / "scratch")
    write_learned_from(args.out, lessons)
    shutil.rmtree(args.out / "scratch")
    (args.out / "recipe.json").write_text(json.dumps(asdict(recipe), indent=2) + "\n", encoding="utf-8")
    name = torch.cuda.get_device_name() if device().type == "cuda" else "cpu"
    (args.out / "device.txt").write_text(f"python -m lab.finetune on {name}\n", encoding="utf-8")
    print(f"reader written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
