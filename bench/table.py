"""Markdown table of bench/compare.sh results: per-epoch seconds and how many times faster
strata is. Usage: python3 bench/table.py results.jsonl"""
import json, sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"CPU: {cpu}; strata threads: {next((r['threads'] for r in rows if r['framework'] == 'strata'), '?')}\n")
print("| model | framework | epoch-1 s | median later epoch s | fit s (linreg) | test acc | peak RSS MB | strata faster by |")
print("|---|---|---|---|---|---|---|---|")
by_model = {}
for r in rows:
    by_model.setdefault(r["model"], {})[r["framework"]] = r
for model, frameworks in by_model.items():
    ours = frameworks.get("strata")
    for name in ("strata", "keras", "keras-jax", "torch"):
        r = frameworks.get(name)
        if r is None:
            continue
        if model == "linreg":
            seconds = r.get("fit_s")
            key = seconds
            ours_key = ours and ours.get("fit_s")
        else:
            seconds = None
            key = r.get("median_later_s") or r.get("epoch1_s")
            ours_key = ours and (ours.get("median_later_s") or ours.get("epoch1_s"))
        ratio = "" if name == "strata" or not ours_key else f"{key / ours_key:.1f}x"
        acc = r.get("test_acc")
        med = r.get("median_later_s")
        print(f"| {model} | {name} | {r.get('epoch1_s', 0) or 0:.3f} | {'' if med is None else f'{med:.3f}'} | "
              f"{'' if seconds is None else f'{seconds:.3f}'} | {'' if acc is None else f'{acc:.4f}'} | "
              f"{r.get('peak_rss_mb', 0):.0f} | {ratio} |")
