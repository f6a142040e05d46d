"""Importing skops without dragging in torch.

`import skops.io` lists scikit-learn's estimators, which imports every scikit-learn package,
`sklearn.externals.array_api_compat.torch` included; where torch is installed (the
`embeddings` extra, or any machine that has it), that alone imports torch: two seconds and
about 350 MB in every process that loads a model. Nothing here needs torch, so it is hidden
while skops is imported: the listing skips a package that cannot be imported.
"""

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_hidden() -> Iterator[None]:
    """`import torch` fails inside the block, unless torch was imported before it."""
    if "torch" in sys.modules:
        yield
        return
    sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]
