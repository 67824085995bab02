"""Seed summaries: hand-computed means and sample SDs; the non-overlap rule; the alt figure."""

import base64
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from course_lib.plotting import figure_with_alt, plot_seeds  # noqa: E402
from course_lib.seeds import clearly_differ, describe, mean_sd  # noqa: E402


def test_mean_and_sample_sd_by_hand():
    mean, sd = mean_sd([0.8, 0.9, 1.0])
    assert mean == pytest.approx(0.9)
    assert sd == pytest.approx(0.1)  # sqrt((0.01 + 0 + 0.01) / 2)
    assert mean_sd([2.0, 4.0])[1] == pytest.approx(math.sqrt(2))


def test_describe_formats_mean_and_spread():
    assert describe([0.8, 0.9, 1.0]) == "90% ± 10%"
    assert describe([0.8, 0.9, 1.0], percent=False) == "0.90 ± 0.10"


def test_one_seed_is_refused():
    with pytest.raises(ValueError, match="at least 2"):
        mean_sd([0.9])


def test_difference_stated_only_beyond_the_spread():
    assert clearly_differ([0.9, 0.92, 0.94], [0.6, 0.62, 0.64])
    assert not clearly_differ([0.9, 0.8, 1.0], [0.85, 0.95, 0.75])
    # means 0.15 apart, SDs 0.1 each: overlapping intervals are not a difference
    assert not clearly_differ([0.8, 0.9, 1.0], [0.65, 0.75, 0.85])
    assert clearly_differ([0.8, 0.9, 1.0], [0.55, 0.65, 0.75])


def test_plot_seeds_draws_every_seed_and_the_mean():
    fig, ax = plt.subplots()
    plot_seeds({"a": [0.1, 0.2, 0.3], "b": [0.5, 0.6]}, ax=ax, chance=0.5)
    dots = [c for c in ax.collections if len(c.get_offsets()) in (2, 3)]
    assert sorted(len(c.get_offsets()) for c in dots) == [2, 3]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    plt.close(fig)


def test_figure_with_alt_puts_the_computed_alt_on_the_image():
    fig, ax = plt.subplots()
    ax.plot([0, 1])

    shown = figure_with_alt(fig, 'accuracy 87% "held out" <b>')
    bundle, metadata = shown._repr_mimebundle_()
    assert 'alt="accuracy 87% &quot;held out&quot; &lt;b&gt;"' in bundle["text/html"]
    # retina: the PNG has twice the pixels of the width it is shown at
    png = base64.b64decode(bundle["image/png"])
    assert int.from_bytes(png[16:20], "big") // 2 == shown.width
    assert f'width="{shown.width}"' in bundle["text/html"]
    assert metadata == {"image/png": {"width": shown.width}}
    # shown at about the figure's own size (a tight bounding box trims the margins)
    assert 0.7 * fig.get_figwidth() * fig.dpi < shown.width <= fig.get_figwidth() * fig.dpi
    assert '<img src="data:image/png;base64,' in bundle["text/html"]
    assert bundle["image/png"] in bundle["text/html"]
    assert not plt.get_fignums()  # the figure is closed, so it is not shown twice
