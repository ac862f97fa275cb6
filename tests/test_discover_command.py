"""`stratforge discover` end to end on a small demo market."""

from __future__ import annotations

from typer.testing import CliRunner

from stratforge.cli.main import app
from stratforge.data import build_atlas
from stratforge.data.demo import synthesize_into_store
from stratforge.discovery.fractal import load_patterns
from stratforge.discovery.library import TemplateLibrary, library_folder

runner = CliRunner()


def test_discover_prints_levels_and_templates_and_saves_the_library(tmp_path):
    home = tmp_path / "home"
    synthesize_into_store("MNQ", days=15, seed=5, resolution="1m", home=home)
    build_atlas("MNQ", home=home)
    args = ["--home", str(home), "discover", "--timeframes", "1h,15m,5m,1m", "--optimize",
            "--iterations", "12", "--members", "5", "--no-fission", "--show", "3"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    patterns = load_patterns("MNQ", home=home)
    library = TemplateLibrary.load(library_folder("MNQ", home))
    assert f"{len(patterns):,} patterns, {len(library)} templates" in result.output
    assert sum(t.members for t in library) == len(patterns)
    assert all(t.params for t in library)           # optimised
    for tf in ("1h", "15m", "5m", "1m"):
        assert f" {tf} " in result.output
    assert "Templates by size" in result.output

    again = runner.invoke(app, args)                # resumes from the checkpoint, same result
    assert again.exit_code == 0, again.output
    assert "from checkpoint" in again.output
    assert TemplateLibrary.load(library_folder("MNQ", home)) == library


def test_simulate_template_matches_every_bar_by_distance_and_z_sign(tmp_path):
    import numpy as np

    from stratforge.discovery.matching import (
        library_hierarchy,
        match_template,
        timeframe_vectors,
    )
    from stratforge.features import FEATURE_NAMES

    home = tmp_path / "home"
    synthesize_into_store("MNQ", days=12, seed=6, resolution="1m", home=home)
    build_atlas("MNQ", home=home)
    result = runner.invoke(app, ["--home", str(home), "discover", "--timeframes",
                                 "1h,15m,5m,1m", "--show", "1"])
    assert result.exit_code == 0, result.output
    library = TemplateLibrary.load(library_folder("MNQ", home))
    assert library_hierarchy(library) == ["1h", "15m", "5m", "1m"]
    template = library.templates[0]
    vectors = timeframe_vectors("MNQ", "5m", library_hierarchy(library), home=home)

    # independent computation: standardise with the stored scaler, Euclidean distance, z sign
    scaler = library.scalers["5m"]
    raw = vectors[list(FEATURE_NAMES)].to_numpy()
    scaled = (raw - np.asarray(scaler.mean)) / np.asarray(scaler.scale)
    distance = np.sqrt(((scaled - np.asarray(template.centroid_scaled)) ** 2).sum(axis=1))
    z = vectors["z"].to_numpy()
    assert template.direction == 0  # two-sided: fades the move above and below the centre
    expected = np.flatnonzero((distance < 2.5) & (z != 0) & np.isfinite(distance))

    entries, sides = match_template(library, template.template_id, vectors, "5m",
                                    threshold=2.5)
    assert entries.tolist() == expected.tolist() and len(entries) > 0
    assert sides.tolist() == [-1 if v > 0 else 1 for v in z[expected]]
    assert set(sides.tolist()) == {-1, 1}

    run = runner.invoke(app, ["--home", str(home), "simulate", "--timeframe", "5m",
                              "--template", template.template_id, "--threshold", "2.5",
                              "--param", "stop_ticks=40", "--explain"])
    assert run.exit_code == 0, run.output
    assert f"template {template.template_id} matches (distance < 2.5): {len(expected):,} " \
           "signals" in run.output
