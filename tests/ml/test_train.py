"""Training is reproducible, the artifact round-trips, and a tampered artifact is refused."""

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from app.config import PACKAGED_MODEL_PATH
from ml import LABELS
from ml import embeddings as sentences
from ml import train as training
from ml.classifier import AveragedProbabilities
from ml.dataset import Columns, Example, fingerprint, seed_corpus
from ml.features import normalise
from ml.model import METADATA_FILE, MODEL_FILE, ModelError, TextClassifier, probabilities
from ml.params import TrainingParams, sample_weights
from ml.train import (
    Part,
    cross_validate_averaged,
    fit,
    gather,
    main,
    model_version,
    train,
    train_averaged,
)

SMALL = [
    Example("my train is 40 minutes late again", "delay", "en"),
    Example("flight cancelled, stuck at the gate", "delay", "en"),
    Example("le RER est bloqué depuis une heure", "delay", "fr"),
    Example("train supprimé encore ce matin", "delay", "fr"),
    Example("thank you so much for the help today", "praise", "en"),
    Example("merci à l'équipe, super accueil", "praise", "fr"),
    Example("great crew, lovely flight, thanks", "praise", "en"),
    Example("bravo au conducteur, très sympa", "praise", "fr"),
]


def test_same_data_and_seed_give_the_same_model(tmp_path: Path) -> None:
    params = TrainingParams(cv_folds=0)
    first = train(SMALL, ["small"], params, tmp_path / "a")
    second = train(SMALL, ["small"], params, tmp_path / "b")
    texts = ["the train is late", "merci beaucoup"]

    assert first["version"] == second["version"]
    a, b = TextClassifier.load(tmp_path / "a"), TextClassifier.load(tmp_path / "b")
    assert [p.probabilities for p in a.predict(texts)] == [
        p.probabilities for p in b.predict(texts)
    ]
    assert [p.label for p in a.predict(texts)] == ["delay", "praise"]


def test_other_data_or_params_give_another_version() -> None:
    base = model_version(fingerprint(SMALL), TrainingParams())

    assert model_version(fingerprint(SMALL[:-1]), TrainingParams()) != base
    assert model_version(fingerprint(SMALL), TrainingParams(c=1.0)) != base
    assert model_version(fingerprint(SMALL), TrainingParams(cv_folds=0)) == base


def test_the_metadata_says_what_the_model_was_built_from(tmp_path: Path) -> None:
    metadata = train(SMALL, ["small"], TrainingParams(cv_folds=2), tmp_path)

    written = json.loads((tmp_path / METADATA_FILE).read_text())
    assert written == metadata
    assert metadata["labels"] == ["delay", "praise"]
    assert metadata["training_data"]["counts"] == {
        "en": {"delay": 2, "praise": 2},
        "fr": {"delay": 2, "praise": 2},
    }
    assert set(metadata["metrics"]) == {"cv_macro_f1", "cv_accuracy"}
    assert {"scikit-learn", "skops", "numpy", "python"} <= set(metadata["libraries"])


def test_labels_are_balanced_within_each_language() -> None:
    examples = [
        *[Example(f"en delay {i}", "delay", "en") for i in range(2)],
        *[Example(f"en praise {i}", "praise", "en") for i in range(6)],
        *[Example(f"fr delay {i}", "delay", "fr") for i in range(6)],
        *[Example(f"fr praise {i}", "praise", "fr") for i in range(2)],
    ]

    weights = sample_weights(examples, service_weight=3.0)

    totals: dict[tuple[str | None, str], float] = {}
    for example, weight in zip(examples, weights, strict=True):
        key = (example.lang, example.label)
        totals[key] = totals.get(key, 0.0) + float(weight)
    # Within a language each label weighs the same, then a service label three times more.
    assert totals[("en", "delay")] == pytest.approx(3 * totals[("en", "praise")])
    assert totals[("fr", "delay")] == pytest.approx(3 * totals[("fr", "praise")])
    assert totals[("en", "delay")] == pytest.approx(totals[("fr", "delay")])


def test_a_few_examples_without_a_language_weigh_like_the_others() -> None:
    examples = [Example(f"merci {i}", "praise", "fr") for i in range(50)]
    examples += [Example(f"thanks {i}", "praise", None) for i in range(2)]

    weights = sample_weights(examples, service_weight=2.0)

    assert np.allclose(weights, 1.0)


def test_a_missing_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no model"):
        TextClassifier.load(tmp_path)


def test_an_artifact_with_an_untrusted_callable_is_refused(tmp_path: Path) -> None:
    train(SMALL, ["small"], TrainingParams(cv_folds=0), tmp_path)
    tampered = Pipeline([("run", FunctionTransformer(os.system))])
    sio.dump(tampered, tmp_path / MODEL_FILE)

    with pytest.raises(ModelError, match="not trusted"):
        TextClassifier.load(tmp_path)


def test_an_averaged_artifact_with_an_untrusted_member_is_refused(tmp_path: Path) -> None:
    train(SMALL, ["small"], TrainingParams(cv_folds=0), tmp_path)
    honest = fit(SMALL, TrainingParams(cv_folds=0))
    tampered = Pipeline([("run", FunctionTransformer(os.system)), honest.steps[-1]])
    sio.dump(AveragedProbabilities([honest, tampered]), tmp_path / MODEL_FILE)

    # The average itself is trusted; the function its member would call is what is refused.
    with pytest.raises(ModelError, match="not trusted") as refused:
        TextClassifier.load(tmp_path)
    assert "system" in str(refused.value)
    assert "AveragedProbabilities" not in str(refused.value)


def test_an_artifact_of_trusted_types_that_does_not_classify_is_refused(tmp_path: Path) -> None:
    train(SMALL, ["small"], TrainingParams(cv_folds=0), tmp_path)
    averaged = AveragedProbabilities([fit(SMALL, TrainingParams(cv_folds=0))])
    averaged.predict_proba = np.exp  # type: ignore[method-assign]  # a trusted numpy function
    sio.dump(averaged, tmp_path / MODEL_FILE)

    with pytest.raises(ModelError, match="does not classify a text"):
        TextClassifier.load(tmp_path)


def test_the_shipped_model_was_trained_on_the_committed_data() -> None:
    metadata = json.loads((PACKAGED_MODEL_PATH / METADATA_FILE).read_text())
    params = TrainingParams(**metadata["params"])
    examples, _ = gather(
        Path(__file__).resolve().parents[2] / "ml" / "data" / "seed",
        _clinc(metadata),
        [],
        Columns(),
    )

    assert metadata["version"] == model_version(fingerprint(examples), params)
    assert set(metadata["labels"]) == set(LABELS)
    assert all(
        "shared/data" not in source or "CLINC150" in source
        for source in metadata["training_data"]["sources"]
    )


def _clinc(metadata: dict[str, object]) -> Path | None:
    sources = metadata["training_data"]["sources"]  # type: ignore[index]
    if not any("CLINC150" in s for s in sources):  # type: ignore[union-attr]
        return None
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "clinc150" / "data_full.json"


@pytest.mark.slow
def test_the_train_command_rebuilds_the_seed_model_reproducibly(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert main(["--out", str(tmp_path / name), "--cv-folds", "0"]) == 0
    a, b = TextClassifier.load(tmp_path / "a"), TextClassifier.load(tmp_path / "b")
    texts = [e.text for e in seed_corpus()[:50]]

    assert a.version == b.version
    assert np.allclose(
        [list(p.probabilities.values()) for p in a.predict(texts)],
        [list(p.probabilities.values()) for p in b.predict(texts)],
        atol=0,
    )


# A company's own history: its complaints, in words the seed examples above never use.
HISTORY = [
    Example(f"{thing} lost at carousel {i}, file ref {i}", "problem", "en")
    for i in range(4)
    for thing in ("suitcase", "backpack")
] + [Example(f"gate {i} flight held on the tarmac again", "delay", "en") for i in range(8)]


def _write(path: Path, examples: list[Example]) -> Path:
    path.write_text(
        "".join(
            json.dumps({"text": e.text, "label": e.label, "lang": e.lang}) + "\n" for e in examples
        )
    )
    return path


def test_an_averaged_model_is_one_artifact_the_service_loads(tmp_path: Path) -> None:
    seed_dir = tmp_path / "seed"
    seed_dir.mkdir()
    _write(seed_dir / "small.jsonl", SMALL)
    history = _write(tmp_path / "history.jsonl", HISTORY)
    args = ["--seed-dir", str(seed_dir), "--data", str(history), "--cv-folds", "2"]

    assert main([*args, "--average-seed", "--out", str(tmp_path / "averaged")]) == 0
    assert main([*args, "--out", str(tmp_path / "pooled")]) == 0

    averaged = TextClassifier.load(tmp_path / "averaged")
    texts = ["my suitcase was lost at carousel 9", "merci à l'équipe"]
    own = fit(HISTORY, TrainingParams(cv_folds=0))
    base = fit(SMALL, TrainingParams(cv_folds=0))
    expected = np.zeros((2, 3))
    expected[:, [0, 2]] += probabilities(own, [normalise(t) for t in texts])
    expected[:, [0, 1]] += probabilities(base, [normalise(t) for t in texts])
    assert averaged.labels == ["delay", "praise", "problem"]
    assert np.allclose(
        [[p.probabilities[label] for label in averaged.labels] for p in averaged.predict(texts)],
        expected / 2,
        atol=1e-6,
    )
    assert [p.label for p in averaged.predict(texts)] == ["problem", "praise"]
    metadata = averaged.metadata
    assert metadata["version"] != TextClassifier.load(tmp_path / "pooled").version
    assert [member["examples"] for member in metadata["members"]] == [16, 8]
    assert metadata["members"][0]["sources"] == ["history.jsonl"]
    assert metadata["training_data"]["examples"] == 24


def test_an_averaged_model_is_cross_validated_on_the_own_data_and_its_labels() -> None:
    # A history post worded as the seed corpus's praise is taken for `praise`, a label the
    # history does not have: it costs `problem` its recall, and adds no zero F1 of its own.
    history = [*HISTORY, Example("merci à l'équipe, super accueil", "problem", "fr")]

    params = TrainingParams(cv_folds=4)

    metrics = cross_validate_averaged(fit(SMALL, params), history, params)

    problem_f1 = 2 * 1.0 * (8 / 9) / (1.0 + 8 / 9)
    assert metrics == {
        "cv_macro_f1": round((1.0 + problem_f1) / 2, 4),
        "cv_accuracy": round(16 / 17, 4),
        "cv_examples": 17,
    }


def test_averaging_needs_data_of_its_own_and_the_seed_corpus(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for args in (["--average-seed"], ["--average-seed", "--no-seed", "--data", "x.csv"]):
        with pytest.raises(SystemExit) as exit_:
            main(args)
        assert exit_.value.code == 2
    assert (
        "--average-seed averages a model of the --data and --corrections files"
        in capsys.readouterr().err
    )


def test_averaging_needs_two_labels_in_the_own_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    only_delays = _write(tmp_path / "delays.jsonl", HISTORY[8:])

    with pytest.raises(SystemExit) as exit_:
        main(["--average-seed", "--data", str(only_delays), "--out", str(tmp_path / "m")])

    assert exit_.value.code == 2
    assert (
        "needs at least two labels in the --data and --corrections files" in capsys.readouterr().err
    )
    assert not (tmp_path / "m").exists()


def test_the_same_data_split_otherwise_between_the_members_is_another_version(
    tmp_path: Path,
) -> None:
    params = TrainingParams(cv_folds=0)
    examples = [*SMALL, *HISTORY]
    first = train_averaged(
        Part(examples[:8], ["a"]), Part(examples[8:], ["b"]), params, tmp_path / "a"
    )
    second = train_averaged(
        Part(examples[:6], ["a"]), Part(examples[6:], ["b"]), params, tmp_path / "b"
    )

    assert first["version"] != second["version"]
    assert first["training_data"]["sha256"] == second["training_data"]["sha256"]


@pytest.mark.parametrize(
    ("history", "message"),
    [
        (
            HISTORY[:1] + HISTORY[8:10],
            "5 cross-validation folds need at least 5 --data and --corrections examples",
        ),
        (
            HISTORY[:1] + HISTORY[8:],
            "a fold of the --data and --corrections examples would learn a single label",
        ),
    ],
)
def test_data_too_small_for_the_folds_is_refused_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], history: list[Example], message: str
) -> None:
    data = _write(tmp_path / "history.jsonl", history)

    with pytest.raises(SystemExit) as exit_:
        main(["--average-seed", "--data", str(data), "--out", str(tmp_path / "m")])

    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_embeddings_need_the_averaged_models_and_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _write(tmp_path / "history.jsonl", HISTORY)
    with pytest.raises(SystemExit) as alone:
        main(["--embeddings", "--data", str(data), "--out", str(tmp_path / "a")])
    # None in sys.modules makes `import` fail, as where the extra is not installed; and the
    # refusal comes before any fitting.
    monkeypatch.setitem(sys.modules, sentences.MODEL_PACKAGE, None)
    monkeypatch.setattr(training, "fit", _no_fitting)
    with pytest.raises(SystemExit) as missing:
        main(["--average-seed", "--embeddings", "--data", str(data), "--out", str(tmp_path / "b")])

    assert (alone.value.code, missing.value.code) == (2, 2)
    errors = capsys.readouterr().err
    assert "--embeddings adds a member to the averaged models: it needs --average-seed" in errors
    assert "needs the embeddings extra: pip install '.[embeddings]'" in errors
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()


def _no_fitting(*args: object) -> None:
    raise AssertionError("fitted before the refusal")


def test_corrections_alone_can_be_averaged_with_the_seed_corpus(tmp_path: Path) -> None:
    corrections = _write(tmp_path / "corrections.jsonl", HISTORY)

    assert (
        main(
            [
                "--average-seed",
                "--corrections",
                str(corrections),
                "--seed-dir",
                str(_write_seed(tmp_path)),
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 0
    )

    metadata = TextClassifier.load(tmp_path / "m").metadata
    assert metadata["metrics"]["cv_examples"] == len(HISTORY)
    assert [m["sources"] for m in metadata["members"]] == [
        ["corrections.jsonl"],
        ["seed corpus (seed/*.jsonl)"],
    ]


def _write_seed(directory: Path) -> Path:
    seed_dir = directory / "seed"
    seed_dir.mkdir()
    _write(seed_dir / "seed.jsonl", SMALL)
    return seed_dir


@pytest.fixture
def extra() -> None:
    pytest.importorskip(sentences.MODEL_PACKAGE)
    pytest.importorskip("sentence_transformers")


@pytest.mark.usefixtures("extra")
def test_the_embeddings_member_learns_the_seed_corpus_and_the_corrections_not_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corrections = [
        Example("the worst airline, your seats are awful", "other", "en"),
        Example("pire compagnie du monde, sièges horribles", "other", "fr"),
        Example("what a joke of an airline honestly", "other", "en"),
        Example("quelle blague cette compagnie franchement", "other", "fr"),
    ]
    learnt: list[set[str]] = []
    real_fit = sentences.fit

    def noted(examples: list[Example], **options: Any) -> sentences.EmbeddingClassifier:
        learnt.append({e.text for e in examples})
        return real_fit(examples, **options)

    monkeypatch.setattr(sentences, "fit", noted)
    params = TrainingParams(cv_folds=4)

    metadata = train_averaged(
        Part(SMALL, ["seed"]),
        Part(HISTORY, ["history.jsonl"]),
        params,
        tmp_path / "m",
        corrections=Part(corrections, ["corrections.jsonl"]),
        embeddings=True,
    )

    seed, fixes = {e.text for e in SMALL}, {e.text for e in corrections}
    *folds, final = learnt
    assert final == seed | fixes
    # Cross-validation: each fold's member learnt the corrections of the other folds only.
    assert len(folds) == 4
    assert all(seed <= texts <= seed | fixes for texts in folds)
    assert set.union(*folds) == seed | fixes
    assert all(len(texts & fixes) == len(fixes) - 1 for texts in folds)
    assert metadata["metrics"]["cv_examples"] == len(HISTORY) + len(corrections)
    members = metadata["members"]
    assert [m["examples"] for m in members] == [
        len(HISTORY) + len(corrections),
        len(SMALL),
        len(SMALL) + len(corrections),
    ]
    assert members[2]["sources"] == ["seed", "corrections.jsonl"]
    assert set(sentences.EXTRA_DISTRIBUTIONS) <= set(metadata["libraries"])
    served = TextClassifier.load(tmp_path / "m")
    assert served.version == metadata["version"]
    assert len(served.predict(["the worst airline ever, awful seats"])) == 1


@pytest.mark.usefixtures("extra")
def test_the_embeddings_member_is_named_in_the_version_with_its_data_and_libraries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = TrainingParams(cv_folds=0)
    fixes, rest = HISTORY[:2], HISTORY[2:]

    def version(name: str, own: list[Example], corrections: list[Example]) -> str:
        metadata = train_averaged(
            Part(SMALL, ["seed"]),
            Part(own, ["history"]),
            params,
            tmp_path / name,
            corrections=Part(corrections, ["corrections"]),
            embeddings=True,
        )
        return str(metadata["version"])

    as_corrections = version("a", rest, fixes)
    # The same n-gram models, but the embeddings member learns no corrections.
    as_data = version("b", [*rest, *fixes], [])
    real = sentences.library_versions()
    monkeypatch.setattr(sentences, "library_versions", lambda: {**real, "torch": "9.9.9"})
    upgraded = version("c", rest, fixes)

    assert len({as_corrections, as_data, upgraded}) == 3
