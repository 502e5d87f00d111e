"""The cluster section's switches (BENCH_CLUSTER, BENCH_ONLY) and the report's hand-written tail."""

from __future__ import annotations

from pathlib import Path

from tests.bench import cluster, report
from tests.bench.options import parse


def test_bench_cluster_is_off_by_default_and_repeated_by_the_command() -> None:
    """BENCH_CLUSTER=1 turns the section on and the report's command says so."""
    assert not parse([], env={}).cluster
    assert "BENCH_CLUSTER" not in parse([], env={}).command()
    options = parse([], env={"BENCH_CLUSTER": "1"})
    assert options.cluster
    assert options.command().endswith("BENCH_CLUSTER=1")
    assert not parse([], env={"BENCH_CLUSTER": "0"}).cluster


def test_bench_only_narrows_the_cluster_section() -> None:
    """Route names keep the section, other section names leave it out."""
    on = {"BENCH_CLUSTER": "1"}
    assert cluster.wanted(parse([], env=on))
    assert cluster.wanted(parse([], env={**on, "BENCH_ONLY": "cluster"}))
    assert cluster.wanted(parse([], env={**on, "BENCH_ONLY": "funnel 30d"}))
    assert not cluster.wanted(parse([], env={**on, "BENCH_ONLY": "live"}))
    assert not cluster.wanted(parse([], env={"BENCH_ONLY": "cluster"}))


def test_handwritten_sections_are_the_tail_from_the_first_by_hand_heading(tmp_path: Path) -> None:
    """Regenerating keeps what was written by hand, and only that."""
    path = tmp_path / "benchmarks.md"
    assert report.handwritten(path) == ""
    path.write_text("# Benchmarks\n\n## Results\n\n| a |\n")
    assert report.handwritten(path) == ""
    tail = "## Reading this run (by hand): why\n\ntext\n\n## The cluster (by hand)\n\nmore\n"
    path.write_text("# Benchmarks\n\n## Results\n\n| a |\n\n" + tail)
    assert report.handwritten(path) == tail
