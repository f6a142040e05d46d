"""Train the mention classifier from files and write a skops artifact with its metadata."""

import argparse
import hashlib
import json
import platform
import subprocess
from collections import Counter
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

from ml import SERVICE_LABELS, model
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


@dataclass(frozen=True)
class TrainingParams:
    seed: int = 13
    c: float = 8.0
    # The labels are balanced within each language, then the service labels weigh this much more:
    # in real traffic most mentions are service requests, and missing one costs more than a
    # needless ticket.
    service_weight: float = 2.0
    # The naive Bayes' share of the blended probabilities, and its smoothing (see docs/model.md).
    bayes_weight: float = 0.2
    bayes_alpha: float = 0.1
    cv_folds: int = 5


def sample_weights(examples: Sequence[Example], service_weight: float) -> NDArray[np.float64]:
    """Labels balanced within each language; the service labels weigh service_weight times more.

    Each language keeps its share of the data and, within it, each of its labels weighs the same:
    an example weighs count(language) / (labels of the language * count(language, label)). With
    the labels balanced over all languages at once, the corpus' language mix would stay inside
    each label: the seed corpus has 319 French delays and 194 English ones, so an English delay
    would count for less, and the naive Bayes would learn what a delay looks like mostly from
    French posts. Examples without a language are one more language.
    """
    languages = Counter(example.lang or "" for example in examples)
    cells = Counter((example.lang or "", example.label) for example in examples)
    labels_per_language = Counter(lang for lang, _ in cells)
    return np.array(
        [
            languages[lang]
            / (labels_per_language[lang] * cells[lang, label])
            * (service_weight if label in SERVICE_LABELS else 1.0)
            for lang, label in ((example.lang or "", example.label) for example in examples)
        ]
    )


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


def train_averaged(
    base: Sequence[Example],
    own: Sequence[Example],
    sources: tuple[list[str], list[str]],
    params: TrainingParams,
    out: Path,
) -> dict[str, Any]:
    """A model of `own` (a company's history, its corrections) and a model of `base` (the seed
    corpus), their probabilities averaged with equal weights; cross-validated on `own`.

    Trained together, the few labels a history lacks (`other`, `schedule`, ...) are drowned
    by its thousands of complaints; averaged, the seed model keeps its view of them."""
    validating = params.cv_folds > 1
    if validating:
        _check_foldable(own, params.cv_folds)  # before the seconds that fitting takes
    base_model = fit(base, params)
    metrics = cross_validate_averaged(base_model, own, params) if validating else {}
    averaged = AveragedProbabilities([fit(own, params), base_model])
    base_sources, own_sources = sources
    metadata = build_metadata(
        [*base, *own],
        params,
        [*base_sources, *own_sources],
        metrics,
        members=(fingerprint(own), fingerprint(base)),
    )
    metadata["members"] = [
        {"sources": own_sources, "examples": len(own)},
        {"sources": base_sources, "examples": len(base)},
    ]
    model.save(averaged, metadata, out)
    return metadata


class TooFewToFold(ValueError):
    """The --data examples cannot be split into the asked cross-validation folds."""


def _check_foldable(own: Sequence[Example], folds: int) -> None:
    if len(own) < folds:
        raise TooFewToFold(f"{folds} cross-validation folds need at least {folds} --data examples")


def cross_validate_averaged(
    base_model: Pipeline, own: Sequence[Example], params: TrainingParams
) -> dict[str, float]:
    """Stratified k-fold macro-F1 and accuracy on `own`: each fold predicted by the (fitted)
    base model averaged with a model of the other folds."""
    folds = params.cv_folds
    _check_foldable(own, folds)

    def predict_fold(train: list[int], test: list[int]) -> list[model.Prediction]:
        if len({own[i].label for i in train}) < 2:
            raise TooFewToFold(
                f"a fold of the --data examples would learn a single label: give more "
                f"examples of each label, or fewer --cv-folds than {folds}"
            )
        members = [fit([own[i] for i in train], params), base_model]
        averaged = model.TextClassifier(AveragedProbabilities(members), {"version": "fold"})
        return averaged.predict([own[i].text for i in test])

    predictions = cross_fitted(own, params.cv_folds, predict_fold, seed=params.seed)
    # Over the labels of `own`: the base model's other labels are predicted, never gold.
    scores = _fold_scores(
        np.array([e.label for e in own]), np.array([p.label for p in predictions])
    )
    return {**scores, "cv_examples": len(own)}


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
        help="one model of the --data files, one of the seed corpus (and CLINC150), their "
        "probabilities averaged; cross-validated on the --data files",
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
    if args.average_seed and (args.no_seed or not args.data):
        p.error("--average-seed averages a model of the --data files with one of the seed corpus")
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
        base, base_sources = gather(seed_dir, args.clinc, [], columns)
        own = [example for path in args.data for example in read_labelled(path, columns)]
        if len({e.label for e in own}) < 2:
            p.error("--average-seed needs at least two labels in the --data files")
        try:
            metadata = train_averaged(
                base, own, (base_sources, [path.name for path in args.data]), params, args.out
            )
        except TooFewToFold as error:
            p.error(str(error))
    else:
        examples, sources = gather(seed_dir, args.clinc, args.data, columns)
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


if __name__ == "__main__":
    raise SystemExit(main())
