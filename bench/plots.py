"""Draw bench/results/*.png from the figures bench/run.py measured (matplotlib, no display needed)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen first)


def _save(fig, out, name, results, phase):
    m = results["machine"]
    # The date the phase was measured (make bench BENCH_ONLY=... keeps the other phases of an earlier run).
    date = results.get("measured", {}).get(phase, {}).get("date", m["date"])
    fig.text(0.99, 0.01, "%s · %d CPUs · %s GiB · %s" % (date, m["cpus"], m["memory_gib"], m["ansible"]),
             ha="right", va="bottom", fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path = out / name
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _converge(results, out):
    c = results["converge"]
    roles = sorted(c["roles"].items(), key=lambda kv: -kv[1]["seconds"])
    fig, ax = plt.subplots(figsize=(8, 3.8))
    left = 0.0
    for name, entry in roles:
        ax.barh("site.yml", entry["seconds"], left=left, label="%s (%d tasks)" % (name.lstrip("_"), entry["tasks"]))  # matplotlib hides "_" labels
        left += entry["seconds"]
    ax.barh("floor (docker exec)", c["floor_seconds"], color="grey")
    base = results.get("baseline")
    title = "Cold converge of the lab against the floor: ratio %.2f" % c["ratio"]
    if base:
        ax.barh("baseline %s" % base["ref"], base["cold_seconds"], color="silver")
        title += "; %.2f x the baseline" % (c["cold_seconds"] / base["cold_seconds"])
    ax.set_xlabel("seconds, cold, %d tasks" % c["tasks"])
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3, frameon=False)
    return _save(fig, out, "converge.png", results, "converge")


def _noop(results, out):
    names = list(results["noop"])
    values = [results["noop"][n]["median_seconds"] for n in names]
    ratios = [results["noop"][n]["ratio_to_defaults"] for n in names]
    colors = ["tab:green"] + ["tab:blue"] * (len(names) - 1)
    base = results.get("baseline")
    if base:
        names.append("baseline %s" % base["ref"])
        values.append(base["noop_median_seconds"])
        ratios.append(base["noop_median_seconds"] / values[0])
        colors.append("silver")
    fig, ax = plt.subplots(figsize=(7, 3))
    bars = ax.bar(names, values, color=colors)
    for bar, ratio in zip(bars, ratios):
        ax.annotate("%.2f×" % ratio, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("seconds (median)")
    ax.set_title("No-op rerun of site.yml (changed=0), one setting changed at a time")
    ax.tick_params(axis="x", labelsize=8)
    return _save(fig, out, "noop.png", results, "noop")


def _scaling(results, out):
    sizes = sorted(int(k) for k in results["scaling"] if k.isdigit())
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for key, label in (("cold_seconds", "cold converge"), ("noop_seconds", "no-op rerun"),
                       ("floor_seconds", "floor: installs and starts by docker exec")):
        if all(key in results["scaling"][str(s)] for s in sizes):
            ax.plot(sizes, [results["scaling"][str(s)][key] for s in sizes], marker="o", label=label)
    ax.set_xticks(sizes)
    ax.set_xlabel("EMQX nodes (+ HAProxy + NGINX)")
    ax.set_ylabel("seconds")
    ax.set_ylim(bottom=0)
    ax.set_title("site.yml wall time by cluster size")
    ax.legend()
    return _save(fig, out, "scaling.png", results, "scaling")


def _frontdoor(results, out):
    names = list(results["frontdoor"])
    fd = results["frontdoor"]
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(11, 3.4))
    colors = ["tab:green" if "collection" in n else "tab:grey" for n in names]
    a1.bar(names, [fd[n]["held"] for n in names], color=colors)
    a1.axhline(fd[names[0]]["attempted"], color="black", linewidth=0.8, linestyle="--")
    a1.set_title("connections held (of %d)" % fd[names[0]]["attempted"], fontsize=9)
    a2.bar(names, [fd[n]["lb_kib_per_connection"] or 0 for n in names], color=colors)
    a2.set_title("LB memory per connection, KiB", fontsize=9)
    a3.bar(names, [fd[n]["handshakes_per_second"] for n in names], color=colors)
    a3.set_title("TLS handshakes + CONNACK per second", fontsize=9)
    for ax in (a1, a2, a3):
        ax.tick_params(axis="x", labelsize=7, rotation=20)
    return _save(fig, out, "frontdoor.png", results, "frontdoor")


def _latency(results, out):
    names = list(results["latency"])
    lat = results["latency"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4))
    x = range(len(names))
    a1.bar([i - 0.2 for i in x], [lat[n]["paced"]["latency_ms"]["p50"] for n in names], width=0.4, label="p50")
    a1.bar([i + 0.2 for i in x], [lat[n]["paced"]["latency_ms"]["p99"] for n in names], width=0.4, label="p99")
    a1.set_xticks(list(x), names, fontsize=7, rotation=20)
    a1.set_ylabel("ms")
    a1.set_title("QoS 1 publish to receive, %d msg/s" % results["settings"]["rate"], fontsize=9)
    a1.legend()
    a2.bar(names, [lat[n]["throughput"]["messages_per_second"] or 0 for n in names])
    a2.tick_params(axis="x", labelsize=7, rotation=20)
    a2.set_title("QoS 1 messages per second, one publisher", fontsize=9)
    return _save(fig, out, "latency.png", results, "latency")


def _scale(results, out):
    sc = results["scale"]
    stages = [k for k in ("3 nodes", "6 nodes") if sc.get(k)]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.6))
    for stage in stages:
        growth = sc[stage]["growth"]
        a1.plot([g["seconds"] for g in growth], [g["node_fds"] for g in growth], marker=".", label=stage)
        fullest = sc[stage]["fullest"]["nodes"]
        if fullest and fullest["limit"]:
            n = int(stage.split()[0])
            a1.axhline(n * fullest["limit"], linestyle="--", linewidth=0.8, color=a1.lines[-1].get_color())
    a1.set_xlabel("seconds into the ramp")
    a1.set_ylabel("open files of the EMQX nodes")
    a1.set_title("Devices arriving (dashed: the nodes' open-file limits)", fontsize=9)
    a1.legend(fontsize=8)
    x = range(len(stages))
    haproxy = [sc[s]["via_haproxy"] for s in stages]
    nginx = [sc[s]["via_nginx"] for s in stages]
    a2.bar(x, haproxy, label="through %d HAProxy hosts" % sc["haproxy_hosts"])
    a2.bar(x, nginx, bottom=haproxy, label="through NGINX (%s workers)" % sc.get("nginx_workers", "?"))
    a2.axhline(sc["devices"], color="black", linewidth=0.8, linestyle="--")
    a2.set_xticks(list(x), stages)
    a2.set_title("MQTT/TLS devices held, of %d asked" % sc["devices"], fontsize=9)
    a2.legend(fontsize=8)
    return _save(fig, out, "scale.png", results, "scale")


def draw(results, out):
    """Every plot the results have figures for; the paths written."""
    drawn = []
    for key, fn in (("converge", _converge), ("noop", _noop), ("scaling", _scaling), ("frontdoor", _frontdoor),
                    ("latency", _latency), ("scale", _scale)):
        if results.get(key):
            drawn.append(fn(results, out))
    return drawn
