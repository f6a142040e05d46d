"""Train the mention classifier from files and write a skops artifact with its metadata."""

import argparse
import hashlib
import json
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import skops
from numpy.typing import NDArray
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

from ml import embeddings as sentences
from ml import model
from ml.classifier import AveragedProbabilities, BlendedClassifier
from ml.dataset import (
    SEED_DIR,
    Columns,
    Example,
    clinc150,
    fingerprint,
    label_counts,
    read_labelled,
    seed_corpus,
)
from ml.features import FEATURES, build_features, normalise
from ml.folds import cross_fitted
from ml.model import ProbabilityModel
from ml.params import TrainingParams, sample_weights


def build_pipeline(params: TrainingParams) -> Pipeline:
    """The features, then a blend of a logistic regression and a multinomial naive Bayes."""
    classifier = BlendedClassifier(
        c=params.c,
        bayes_weight=params.bayes_weight,
        bayes_alpha=params.bayes_alpha,
        random_state=params.seed,
    )
    return Pipeline([("features", build_features()), ("classifier", classifier)])


def fit(examples: Sequence[Example], params: TrainingParams) -> Pipeline:
    """Fit a pipeline on normalised texts; deterministic for the same examples and params."""
    pipeline = build_pipeline(params)
    pipeline.fit(
        [normalise(e.text) for e in examples],
        [e.label for e in examples],
        classifier__sample_weight=sample_weights(examples, params.service_weight),
    )
    return pipeline


def cross_validate(examples: Sequence[Example], params: TrainingParams) -> dict[str, float]:
    """Stratified k-fold macro-F1 and accuracy on the training data itself, seeds fixed."""
    texts = [normalise(e.text) for e in examples]
    labels = np.array([e.label for e in examples])
    folds = StratifiedKFold(n_splits=params.cv_folds, shuffle=True, random_state=params.seed)
    predicted = cross_val_predict(
        build_pipeline(params),
        texts,
        labels,
        cv=folds,
        params={"classifier__sample_weight": sample_weights(examples, params.service_weight)},
    )
    return _fold_scores(labels, predicted)


def _fold_scores(labels: NDArray[np.str_], predicted: NDArray[np.str_]) -> dict[str, float]:
    """Macro-F1 over the gold labels (a label only predicted would count a zero F1) and
    accuracy of cross-validated predictions."""
    present = sorted(set(labels.tolist()))
    macro = f1_score(labels, predicted, labels=present, average="macro", zero_division=0)
    return {
        "cv_macro_f1": round(float(macro), 4),
        "cv_accuracy": round(float(np.mean(predicted == labels)), 4),
    }


def model_version(
    data_fingerprint: str, params: TrainingParams, *, members: Sequence[str] = ()
) -> str:
    """Same data and params, same version: the version names what the model was built from.

    `members`: the fingerprint of each averaged model's data, in order. The same data split
    otherwise makes another model; a model of its own keeps the key it always had."""
    # Cross-validation folds only change the reported metrics, not the model: left out.
    fitted = {name: value for name, value in asdict(params).items() if name != "cv_folds"}
    built: dict[str, Any] = {"data": data_fingerprint, "params": fitted, "features": FEATURES}
    if members:
        built["members"] = list(members)
    key = json.dumps(built, sort_keys=True)
    return "aiguilleur-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def build_metadata(
    examples: Sequence[Example],
    params: TrainingParams,
    sources: list[str],
    metrics: dict[str, float],
    *,
    members: Sequence[str] = (),
) -> dict[str, Any]:
    data_fingerprint = fingerprint(examples)
    return {
        "version": model_version(data_fingerprint, params, members=members),
        "labels": sorted({e.label for e in examples}),
        "training_data": {
            "sources": sources,
            "sha256": data_fingerprint,
            "examples": len(examples),
            "counts": label_counts(examples),
        },
        "params": asdict(params),
        "metrics": metrics,
        "code_revision": _code_revision(),
        "libraries": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "skops": skops.__version__,
            "numpy": np.__version__,
        },
        "attribution": "CLINC150 (Larson et al., EMNLP 2019), CC BY 3.0, where listed in sources",
    }


def _code_revision() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH, optional,
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def gather(
    seed_dir: Path | None, clinc: Path | None, extra: Sequence[Path], columns: Columns
) -> tuple[list[Example], list[str]]:
    """The training examples and a description of where they came from."""
    examples: list[Example] = []
    sources: list[str] = []
    if seed_dir is not None:
        examples += seed_corpus(seed_dir)
        sources.append(f"seed corpus ({seed_dir.name}/*.jsonl)")
    if clinc is not None:
        examples += clinc150(clinc)
        sources.append(
            "CLINC150 (CC BY 3.0): "
            + ", ".join(sorted(["flight_status", "lost_luggage", "book_flight", "oos"]))
        )
    for path in extra:
        examples += read_labelled(path, columns)
        sources.append(path.name)
    if not examples:
        raise ValueError("no training data: give a seed corpus, CLINC150 or --data files")
    return examples, sources


def train(
    examples: Sequence[Example], sources: list[str], params: TrainingParams, out: Path
) -> dict[str, Any]:
    """Fit, cross-validate, save; returns the metadata written beside the model."""
    metrics = cross_validate(examples, params) if params.cv_folds > 1 else {}
    pipeline = fit(examples, params)
    metadata = build_metadata(examples, params, sources, metrics)
    model.save(pipeline, metadata, out)
    return metadata


@dataclass(frozen=True)
class Part:
    """Examples that one or more averaged members learn, and where they came from."""

    examples: Sequence[Example]
    sources: list[str]


def train_averaged(
    base: Part,
    own: Part,
    params: TrainingParams,
    out: Path,
    *,
    corrections: Part = Part((), []),
    embeddings: bool = False,
) -> dict[str, Any]:
    """A model of `own` and the `corrections` (a company's history, its agents' corrections)
    and a model of `base` (the seed corpus), their probabilities averaged with equal weights;
    with `embeddings`, a third member over sentence embeddings (`average`). Cross-validated
    on `own` and the corrections.

    Trained together, the few labels a history lacks (`other`, `schedule`, ...) are drowned
    by its thousands of complaints; averaged, the seed model keeps its view of them."""
    learnt = [*own.examples, *corrections.examples]
    validating = params.cv_folds > 1
    if validating:
        _check_foldable(learnt, params.cv_folds)  # before the seconds that fitting takes
    vectors = sentences.Vectors() if embeddings else None
    base_model = fit(base.examples, params)
    metrics: dict[str, float] = {}
    if validating:
        metrics = cross_validate_averaged(
            base_model,
            own.examples,
            params,
            corrections=corrections.examples,
            base=base.examples,
            vectors=vectors,
        )
    averaged = average(
        base.examples, base_model, own.examples, corrections.examples, params, vectors
    )
    metadata = _averaged_metadata(base, own, corrections, params, metrics, embeddings)
    model.save(averaged, metadata, out)
    return metadata


NGRAMS = "word and character n-grams"
SENTENCE_EMBEDDINGS = f"sentence embeddings ({sentences.ENCODER})"


def _averaged_metadata(
    base: Part,
    own: Part,
    corrections: Part,
    params: TrainingParams,
    metrics: dict[str, float],
    embeddings: bool,
) -> dict[str, Any]:
    """The metadata of `average`'s members: each one's features, sources and size. The version
    names each member's data and features, so the same data split otherwise is another one, and
    the embeddings member's encoder and libraries, so an upgrade of them is another one too."""
    members = [
        (
            NGRAMS,
            Part([*own.examples, *corrections.examples], [*own.sources, *corrections.sources]),
        ),
        (NGRAMS, base),
    ]
    if embeddings:
        both = Part([*base.examples, *corrections.examples], [*base.sources, *corrections.sources])
        members.append((SENTENCE_EMBEDDINGS, both))
    metadata = build_metadata(
        [*base.examples, *own.examples, *corrections.examples],
        params,
        [*base.sources, *own.sources, *corrections.sources],
        metrics,
        members=[
            fingerprint(part.examples)
            if features == NGRAMS
            else f"{sentences.fitted_with()} {fingerprint(part.examples)}"
            for features, part in members
        ],
    )
    metadata["members"] = [
        {"features": features, "sources": part.sources, "examples": len(part.examples)}
        for features, part in members
    ]
    if embeddings:
        metadata["libraries"].update(sentences.library_versions())
    return metadata


def average(
    base: Sequence[Example],
    base_model: ProbabilityModel,
    own: Sequence[Example],
    corrections: Sequence[Example],
    params: TrainingParams,
    vectors: sentences.Vectors | None = None,
) -> AveragedProbabilities:
    """A model of `own` and `corrections`, the fitted `base_model`, and, given `vectors` (the
    `embeddings` extra), a logistic regression over the sentence embeddings of `base` and
    `corrections`.

    The embeddings member learns the corrections but not `own`: a history's labels are often
    derived (a crowd's reasons, a CRM's categories), and they call venting ("the worst airline")
    a problem, where the taxonomy, which the agents follow, calls it `other`. Telling the two
    apart is what embeddings do better than n-grams (docs/model.md)."""
    members: list[ProbabilityModel] = [fit([*own, *corrections], params), base_model]
    if vectors is not None:
        learnt = [*base, *corrections]
        members.append(
            sentences.fit(
                learnt,
                vectors=vectors.of(learnt),
                seed=params.seed,
                service_weight=params.service_weight,
            )
        )
    return AveragedProbabilities(members)


class RefusedTraining(ValueError):
    """The examples given cannot train what was asked: the reason is said, nothing written."""


class TooFewToFold(RefusedTraining):
    """The --data and --corrections examples cannot be split into the asked folds."""


def _check_foldable(learnt: Sequence[Example], folds: int) -> None:
    if len(learnt) < folds:
        raise TooFewToFold(
            f"{folds} cross-validation folds need at least {folds} --data and --corrections "
            "examples"
        )


def cross_validate_averaged(
    base_model: ProbabilityModel,
    own: Sequence[Example],
    params: TrainingParams,
    *,
    corrections: Sequence[Example] = (),
    base: Sequence[Example] = (),
    vectors: sentences.Vectors | None = None,
) -> dict[str, float]:
    """Stratified k-fold macro-F1 and accuracy on `own` and `corrections`: each fold predicted
    by `average` of the (fitted) base model and members that learnt the other folds."""
    learnt = [*own, *corrections]
    folds = params.cv_folds
    _check_foldable(learnt, folds)

    def predict_fold(train: list[int], test: list[int]) -> list[model.Prediction]:
        if len({learnt[i].label for i in train}) < 2:
            raise TooFewToFold(
                "a fold of the --data and --corrections examples would learn a single label: "
                f"give more examples of each label, or fewer --cv-folds than {folds}"
            )
        fold_own = [learnt[i] for i in train if i < len(own)]
        fold_corrections = [learnt[i] for i in train if i >= len(own)]
        averaged = average(base, base_model, fold_own, fold_corrections, params, vectors)
        classifier = model.TextClassifier(averaged, {"version": "fold"})
        return classifier.predict([learnt[i].text for i in test])

    predictions = cross_fitted(learnt, params.cv_folds, predict_fold, seed=params.seed)
    # Over the labels of `own` and the corrections: the base model's others are never gold.
    scores = _fold_scores(
        np.array([e.label for e in learnt]), np.array([p.label for p in predictions])
    )
    return {**scores, "cv_examples": len(learnt)}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aiguilleur train", description=__doc__)
    p.add_argument(
        "--out",
        type=Path,
        default=Path("var/model"),
        help="directory for model.skops and metadata.json",
    )
    p.add_argument(
        "--seed-dir", type=Path, default=SEED_DIR, help="hand-written seed corpus (*.jsonl)"
    )
    p.add_argument("--no-seed", action="store_true", help="train on --data files only")
    p.add_argument(
        "--average-seed",
        action="store_true",
        help="one model of the --data and --corrections files, one of the seed corpus (and "
        "CLINC150), their probabilities averaged; cross-validated on the --data and "
        "--corrections files",
    )
    p.add_argument(
        "--embeddings",
        action="store_true",
        help="with --average-seed: a third member, a logistic regression over the sentence "
        "embeddings of the seed corpus and the --corrections (the embeddings extra, needed "
        "wherever the model is served)",
    )
    p.add_argument(
        "--clinc",
        type=Path,
        default=None,
        help="CLINC150 data_full.json, to add its travel intents",
    )
    p.add_argument(
        "--data",
        type=Path,
        action="append",
        default=[],
        help="extra labelled CSV / JSON-lines file",
    )
    p.add_argument(
        "--corrections",
        type=Path,
        action="append",
        default=[],
        help="labelled file of agents' corrections (aiguilleur export-training): learnt as "
        "--data is and, with --embeddings, by the embeddings member too",
    )
    p.add_argument("--text-field", default="text")
    p.add_argument("--label-field", default="label")
    p.add_argument("--random-seed", type=int, default=TrainingParams.seed)
    p.add_argument(
        "--service-weight",
        type=float,
        default=TrainingParams.service_weight,
        help="extra weight of schedule, delay and problem",
    )
    p.add_argument(
        "--c", type=float, default=TrainingParams.c, help="inverse regularisation strength"
    )
    p.add_argument(
        "--bayes-weight",
        type=float,
        default=TrainingParams.bayes_weight,
        help="share of the naive Bayes in the blended probabilities (0 to 1)",
    )
    p.add_argument(
        "--bayes-alpha",
        type=float,
        default=TrainingParams.bayes_alpha,
        help="smoothing of the naive Bayes",
    )
    p.add_argument(
        "--cv-folds", type=int, default=TrainingParams.cv_folds, help="0 to skip cross-validation"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.average_seed and (args.no_seed or not (args.data or args.corrections)):
        p.error(
            "--average-seed averages a model of the --data and --corrections files with one "
            "of the seed corpus"
        )
    if args.embeddings and not args.average_seed:
        p.error("--embeddings adds a member to the averaged models: it needs --average-seed")
    columns = Columns(text=args.text_field, label=args.label_field)
    seed_dir = None if args.no_seed else args.seed_dir
    params = TrainingParams(
        seed=args.random_seed,
        c=args.c,
        service_weight=args.service_weight,
        bayes_weight=args.bayes_weight,
        bayes_alpha=args.bayes_alpha,
        cv_folds=args.cv_folds,
    )
    if args.average_seed:
        try:
            metadata = _train_averaged(args, seed_dir, columns, params)
        except (RefusedTraining, sentences.EmbeddingsNotInstalled) as error:
            p.error(str(error))
    else:
        examples, sources = gather(seed_dir, args.clinc, [*args.data, *args.corrections], columns)
        metadata = train(examples, sources, params, args.out)
    print(
        json.dumps(
            {k: metadata[k] for k in ("version", "training_data", "metrics")},
            indent=2,
            ensure_ascii=False,
        )
    )
    print(f"model written to {args.out}")
    return 0


def _train_averaged(
    args: argparse.Namespace, seed_dir: Path | None, columns: Columns, params: TrainingParams
) -> dict[str, Any]:
    base, base_sources = gather(seed_dir, args.clinc, [], columns)
    own, corrections = (
        Part(
            [example for path in paths for example in read_labelled(path, columns)],
            [path.name for path in paths],
        )
        for paths in (args.data, args.corrections)
    )
    if len({e.label for e in [*own.examples, *corrections.examples]}) < 2:
        raise RefusedTraining(
            "--average-seed needs at least two labels in the --data and --corrections files"
        )
    if args.embeddings:
        sentences.encoder()  # a missing extra is said before the seconds that fitting takes
    return train_averaged(
        Part(base, base_sources),
        own,
        params,
        args.out,
        corrections=corrections,
        embeddings=args.embeddings,
    )


if __name__ == "__main__":
    raise SystemExit(main())
