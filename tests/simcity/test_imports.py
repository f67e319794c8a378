"""Importing the env stays light: heavy libraries load where they are used, not on import.

Checked on ``sys.modules`` in a fresh interpreter, not on a wall clock (benchmarks never
gate tests). `python -X importtime -c "import simcity.env"` shows where the time goes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Never on `import simcity.env`: torch is agents' alone; the others load where they are used
# (matplotlib on render, scipy.stats for rare large Poisson means, scipy, numba and networkx
# when a city is built or a day solved).
NOT_ON_IMPORT = (
    "torch",
    "agents",
    "matplotlib",
    "pydeck",
    "scipy",
    "scipy.stats",
    "numba",
    "networkx",
)


def loaded_after(code: str, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` are in ``sys.modules`` after running ``code`` in a fresh Python."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps([n for n in {list(names)!r} if n in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


def test_import_simcity_env_pulls_no_heavy_library() -> None:
    assert loaded_after("import simcity.env", NOT_ON_IMPORT) == []


def test_the_probe_sees_what_is_imported() -> None:
    # The check above is vacuous if the probe cannot see an import.
    assert loaded_after("import simcity.env, scipy.stats", NOT_ON_IMPORT) == [
        "scipy",
        "scipy.stats",
    ]


def test_matplotlib_loads_on_the_first_render_only() -> None:
    code = (
        "import numpy as np, sys\n"
        "from simcity.env import CityEnv\n"
        "env = CityEnv('tiny', render_mode='rgb_array')\n"
        "env.reset(seed=0)\n"
        "env.step(np.ones(env.action_space.shape))\n"
        "assert 'matplotlib' not in sys.modules and 'torch' not in sys.modules\n"
        "env.render()"
    )
    assert loaded_after(code, ("matplotlib", "torch", "pydeck")) == ["matplotlib"]
