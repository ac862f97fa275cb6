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
