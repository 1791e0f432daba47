"""Sweep results as a PNG (matplotlib, the optional `plot` extra)."""

from __future__ import annotations


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError("plotting needs matplotlib: pip install 'ntdsbackup[plot]'") from exc
    return plt


def plot_sweeps(report: dict, path: str) -> None:
    plt = _pyplot()
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


def plot_scale(report: dict, path: str) -> None:
    """Throughput (median, min..max) and peak RSS by database size."""
    plt = _pyplot()
    rows = report["rows"]
    gib = [r["size"] / 2**30 for r in rows]
    fig, (rate, rss) = plt.subplots(1, 2, figsize=(9.5, 3.8))
    for op, color in (("backup", "#4c72b0"), ("restore", "#dd8452")):
        med = [r[op]["mb_per_s_median"] for r in rows]
        lo = [m - r[op]["mb_per_s_min"] for m, r in zip(med, rows)]
        hi = [r[op]["mb_per_s_max"] - m for m, r in zip(med, rows)]
        rate.errorbar(gib, med, yerr=[lo, hi], marker="o", capsize=4, label=op, color=color)
        rss.plot(gib, [r[op]["max_rss_mib"] or 0 for r in rows], marker="o", label=op,
                 color=color)
    for ax, title, unit in ((rate, "throughput", "MB/s (median, min..max)"),
                            (rss, "peak RSS", "MiB")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(gib, [f"{g:g} GiB" if g >= 1 else f"{g * 1024:g} MiB" for g in gib])
        ax.set_xlabel("database size")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        ax.legend()
    fig.suptitle(f"ntdsbackup engine by database size ({report['work_dir']}, "
                 f"{report['repeat']} runs each)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
