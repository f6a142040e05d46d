"""Prediction latency of a model artifact: single texts (p50/p99) and batches of 1,000.

Usage: python bench/predict.py [--model DIR] [--single 2000] [--batches 20]
Prints figures; it asserts nothing (speed is measured here, never in unit tests).
"""

import argparse
import platform
import statistics
import time
from pathlib import Path

from ml.dataset import seed_corpus
from ml.model import TextClassifier

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "app" / "classify" / "model"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--single", type=int, default=2000, help="single-text calls to time")
    parser.add_argument("--batches", type=int, default=20, help="batches of 1,000 texts to time")
    args = parser.parse_args()

    started = time.perf_counter()
    model = TextClassifier.load(args.model)
    load_seconds = time.perf_counter() - started
    texts = [example.text for example in seed_corpus()]
    model.predict(texts[:100])  # warm-up

    single = []
    for i in range(args.single):
        started = time.perf_counter()
        model.predict([texts[i % len(texts)]])
        single.append((time.perf_counter() - started) * 1000)

    batch = []
    for i in range(args.batches):
        chunk = [texts[(i * 1000 + j) % len(texts)] for j in range(1000)]
        started = time.perf_counter()
        model.predict(chunk)
        batch.append((time.perf_counter() - started) * 1000)

    machine = platform.processor() or platform.machine()
    print(f"model {model.version} on {machine}, Python {platform.python_version()}")
    print(f"load: {load_seconds:.2f} s")
    print(
        f"single text ({args.single} calls): p50 {percentile(single, 0.5):.3f} ms, "
        f"p99 {percentile(single, 0.99):.3f} ms, max {max(single):.3f} ms"
    )
    print(
        f"1,000 texts ({args.batches} batches): median {statistics.median(batch):.1f} ms, "
        f"max {max(batch):.1f} ms, {1000 / statistics.median(batch) * 1000:,.0f} texts/s"
    )


if __name__ == "__main__":
    main()
