"""Loading the model's code never imports torch, even where torch is installed."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECK = """
import sys
import ml.model
print("during:", "torch" in sys.modules)
import torch
print("after:", torch.FAKE)
"""


def test_importing_the_model_code_leaves_torch_alone(tmp_path: Path) -> None:
    # A stand-in torch on the path: importing it is what the real one would cost.
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("FAKE = 'stand-in'\n")

    done = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=ROOT,
        env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["during:", "False", "after:", "stand-in"]
