"""Sweep results as a PNG (matplotlib, the optional `plot` extra)."""

from __future__ import annotations


def plot_sweeps(report: dict, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError("plotting needs matplotlib: pip install 'ntdsbackup[plot]'") from exc
    axes_names = list(report["sweeps"])
    fig, axes = plt.subplots(1, len(axes_names), figsize=(4.2 * len(axes_names), 3.6),
                             squeeze=False)
    for ax, name in zip(axes[0], axes_names):
        rows = report["sweeps"][name]
        xs = [str(r["value"] >> 10) + "K" if name == "chunk" else str(r["value"])
              for r in rows]
        med = [r["mb_per_s_median"] for r in rows]
        lo = [r["mb_per_s_median"] - r["mb_per_s_min"] for r in rows]
        hi = [r["mb_per_s_max"] - r["mb_per_s_median"] for r in rows]
        ax.bar(xs, med, yerr=[lo, hi], capsize=4, color="#4c72b0")
        ax.set_title(f"backup MB/s by {name}")
        ax.set_xlabel(name)
        ax.set_ylabel("MB/s (median, min..max)")
    fig.suptitle(f"ntdsbackup engine, {report['size'] / 2**30:.2f} GiB emulated DC, "
                 f"{report['repeat']} runs each")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
