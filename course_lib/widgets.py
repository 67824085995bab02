"""Interactive explorers for readers who run the chapters (ipywidgets).

In the rendered book there is no kernel to move a slider, so each chapter shows a static
figure drawn by the same function just before the explorer cell.
"""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt

from course_lib.plotting import draw_mask_and_spectrum


def density_explorer(n: int = 100, gain: float = 0.9) -> widgets.interactive:
    """A density slider showing the random mask and the eigenvalues of the masked matrix."""

    def show(density: float = 0.2, seed: int = 0):
        draw_mask_and_spectrum(density, n=n, gain=gain, seed=seed)
        plt.show()

    return widgets.interactive(
        show,
        density=widgets.FloatSlider(value=0.2, min=0.02, max=1.0, step=0.02, description="density"),
        seed=widgets.IntSlider(value=0, min=0, max=20, description="seed"),
    )
