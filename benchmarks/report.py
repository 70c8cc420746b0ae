"""One table of every benchmark's headline figures against its target, from ``$HYBRID_HOME/bench/*.json``.

.venv/bin/python -m benchmarks.report              # terminal table
.venv/bin/python -m benchmarks.report --markdown   # the table in README.md / docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import sys

from benchmarks.common import bench_dir


def _load(name: str) -> dict | None:
    path = bench_dir() / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _row(name: str, ours: str, reference: str, target: str, ratio: str, met: bool) -> list[str]:
    return [name, ours, reference, target, ratio, "met" if met else "missed"]


def rows() -> list[list[str]]:
    out: list[list[str]] = []
    s = _load("serving")
    if s:
        ratio = s["predict_p99_ms"] / s["feast_serve_p99_ms"]
        out.append(
            _row(
                "serving: sequential p99 (ms)",
                f"{s['predict_p99_ms']:.2f} (p50 {s['predict_p50_ms']:.2f})",
                f"{s['feast_serve_p99_ms']:.2f} (p50 {s['feast_serve_p50_ms']:.2f})",
                "<= 0.5x",
                f"{ratio:.2f}x",
                ratio <= 0.5,
            )
        )
        ratio = s["predict_rps_c32"] / s["feast_serve_rps_c32"]
        out.append(
            _row(
                "serving: req/s at concurrency 32",
                f"{s['predict_rps_c32']:,.0f}",
                f"{s['feast_serve_rps_c32']:,.0f}",
                ">= 2x",
                f"{ratio:.2f}x",
                ratio >= 2,
            )
        )
        out.append(
            _row("serving: errors during a hot deploy", str(s["errors"]), "-", "0", "-", s["errors"] == 0)
        )
    m = _load("materialize")
    if m:
        ratio = m["ours_rows_per_s"] / m["feast_rows_per_s"]
        out.append(
            _row(
                "online load: entity rows/s (largest size)",
                f"{m['ours_rows_per_s']:,.0f}",
                f"{m['feast_rows_per_s']:,.0f}",
                ">= 10x",
                f"{ratio:.1f}x",
                ratio >= 10,
            )
        )
        small, big = m.get("ours_peak_rss_mb_100k"), m.get("ours_peak_rss_mb_1m")
        if small and big:
            out.append(
                _row(
                    "online load: our peak RSS 100k -> 1M (MB)",
                    f"{small:.0f} -> {big:.0f}",
                    f"{m.get('feast_peak_rss_mb_100k', 0):.0f} -> {m.get('feast_peak_rss_mb_1m', 0):.0f}",
                    "flat",
                    f"{big / small:.2f}x",
                    big <= small * 1.25,
                )
            )
    f = _load("features")
    if f:
        ratio = f["pandas_s"] / f["ours_s"]
        out.append(
            _row(
                "features: 10M transactions (s)",
                f"{f['ours_s']:.1f}",
                f"{f['pandas_s']:.1f}",
                ">= 4x faster",
                f"{ratio:.1f}x",
                ratio >= 4,
            )
        )
        out.append(
            _row(
                "features: peak RSS (MB)",
                f"{f['ours_peak_rss_mb']:,.0f}",
                f"{f['pandas_peak_rss_mb']:,.0f}",
                "less",
                f"{f['ours_peak_rss_mb'] / f['pandas_peak_rss_mb']:.2f}x",
                f["ours_peak_rss_mb"] < f["pandas_peak_rss_mb"],
            )
        )
        growth = f["ours_s_50m"] / f["ours_s"]
        out.append(
            _row(
                "features: 50M / 10M time",
                f"{f['ours_s_50m']:.1f} s",
                "-",
                "about 5x",
                f"{growth:.1f}x",
                growth <= 6.5,
            )
        )
    ts = _load("training_set")
    if ts:
        r = ts["feast_file_s"] / ts["ours_s"]
        out.append(
            _row(
                "training set: demo-scale join (s)",
                f"{ts['ours_s']:.2f}",
                f"{ts['feast_file_s']:.1f}",
                ">= 20x faster",
                f"{r:.0f}x",
                r >= 20 and ts["identical"],
            )
        )
        g = ts["ours_s_10x"] / ts["ours_s"]
        out.append(
            _row(
                "training set: 10x customers / demo time",
                f"{ts['ours_s_10x']:.2f} s",
                "-",
                "<= 12x",
                f"{g:.1f}x",
                g <= 12,
            )
        )
        if ts.get("cluster_s"):
            out.append(
                _row(
                    "training set: demo scale on a local 2-worker Dask cluster (s)",
                    f"{ts['cluster_s']:.2f}",
                    f"{ts['ours_s']:.2f} (one process)",
                    "same frame",
                    f"{ts['cluster_s'] / ts['ours_s']:.1f}x",
                    bool(ts.get("cluster_identical")),
                )
            )
        out.append(
            _row(
                "training set: peak RSS at demo scale (MB)",
                f"{ts['ours_peak_rss_mb']:,.0f}",
                f"{ts['feast_file_peak_rss_mb']:,.0f}",
                "<= 1,500",
                f"{ts['ours_peak_rss_mb'] / ts['feast_file_peak_rss_mb']:.2f}x",
                ts["ours_peak_rss_mb"] <= 1500,
            )
        )
    t = _load("training")
    if t:
        out.append(
            _row(
                f"training: LightGBM {t.get('rows', 0):,} rows (s)",
                f"{t['train_s']:.1f} (AUC {t.get('auc', float('nan')):.3f})",
                "-",
                "< 30 s",
                "-",
                t["train_s"] < 30,
            )
        )
    return out


HEADER = ["benchmark", "ours", "reference", "target", "ratio", "verdict"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    table = rows()
    if not table:
        print(f"no results in {bench_dir()}: run `make bench`")
        return 1
    if args.markdown:
        print("| " + " | ".join(HEADER) + " |")
        print("|" + "---|" * len(HEADER))
        for row in table:
            print("| " + " | ".join(row) + " |")
    else:
        from benchmarks.common import print_table

        print_table(f"Benchmarks ({bench_dir()})", HEADER, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
