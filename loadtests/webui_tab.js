// The Redis tab's live charts and gate states, drawn above the tab's table from /redis/live.
// Locust's tabs hold tables only; this draws plain SVG every two seconds while the tab is open.
(() => {
  const PANEL_ID = "redis-live";
  const CHARTS = [
    { key: "ops", title: "server ops/s", lines: [{ field: "ops_per_s", colour: "#1f77b4" }] },
    { key: "hit", title: "hit ratio (server)", max: 1, lines: [{ field: "hit_ratio", colour: "#2ca02c" }] },
    {
      key: "memory", title: "memory vs maxmemory (MiB)", scale: 1 / 1048576,
      lines: [{ field: "used_memory", colour: "#1f77b4", label: "used" },
              { field: "maxmemory", colour: "#d62728", dash: "4 3", label: "maxmemory" }],
    },
    { key: "evictions", title: "evictions/s", lines: [{ field: "evictions_per_s", colour: "#d62728" }] },
    { key: "p99", title: "worst p99 (µs)", source: "p99", lines: [{ field: "p99_us", colour: "#9467bd" }] },
  ];
  const STATE_COLOURS = { passing: "#2e7d32", failing: "#c62828", "at the end": "#757575", "no data yet": "#757575" };

  function svgChart(chart, points) {
    const w = 260, h = 110, pad = 28;
    const scale = chart.scale || 1;
    const values = points.flatMap(p => chart.lines.map(l => p[l.field])).filter(v => v !== null && v !== undefined);
    const top = chart.max || Math.max(1e-9, ...values.map(v => v * scale)) * 1.1;
    const t0 = points.length ? points[0].t : 0, t1 = points.length ? points[points.length - 1].t : 1;
    const x = t => pad + (w - pad - 4) * ((t - t0) / Math.max(1, t1 - t0));
    const y = v => h - 14 - (h - 28) * (v * scale / top);
    const paths = chart.lines.map(l => {
      const d = points.filter(p => p[l.field] !== null && p[l.field] !== undefined)
        .map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p[l.field]).toFixed(1)}`).join(" ");
      return `<path d="${d}" fill="none" stroke="${l.colour}" stroke-width="1.5"${l.dash ? ` stroke-dasharray="${l.dash}"` : ""}/>`;
    }).join("");
    const last = points.length ? points[points.length - 1] : {};
    const now = chart.lines.map(l => {
      const v = last[l.field];
      const shown = v === null || v === undefined ? "-" : (chart.max === 1 ? `${(v * 100).toFixed(1)} %` : Math.round(v * scale).toLocaleString());
      return `${l.label ? l.label + " " : ""}${shown}`;
    }).join(" / ");
    return `<div class="redis-chart" data-chart="${chart.key}" style="display:inline-block;margin:4px 10px 4px 0">
      <div style="font-size:12px;font-weight:bold">${chart.title}: <span class="now">${now}</span></div>
      <svg width="${w}" height="${h}" style="background:#fafafa;border:1px solid #ddd">
        <text x="2" y="12" font-size="9" fill="#666">${chart.max === 1 ? "1" : Math.round(top).toLocaleString()}</text>
        <text x="2" y="${h - 16}" font-size="9" fill="#666">0</text>${paths}</svg></div>`;
  }

  function gateChips(gates) {
    if (!gates.length) return "";
    return `<div id="redis-gates" style="margin:6px 0">${gates.map(g => {
      const value = g.value === null || g.value === undefined ? "" : ` ${Number(g.value).toPrecision(3)} (limit ${g.threshold})`;
      return `<span class="gate" data-gate="${g.name}" data-state="${g.state}" title="${g.detail || ""}"
        style="display:inline-block;margin:2px 6px 2px 0;padding:2px 8px;border-radius:10px;color:white;font-size:12px;
        background:${STATE_COLOURS[g.state] || "#757575"}">${g.name}: ${g.state}${value}</span>`;
    }).join("")}</div>`;
  }

  async function draw() {
    if (!new URLSearchParams(location.search).get("tab")?.startsWith("redis")) return;
    const table = [...document.querySelectorAll("table")].find(t => /Metric/.test(t.querySelector("thead")?.innerText || ""));
    if (!table) return;
    const holder = table.closest(".MuiTableContainer-root") || table;
    let panel = document.getElementById(PANEL_ID);
    if (!panel || panel.nextElementSibling !== holder) {
      panel?.remove();
      panel = document.createElement("div");
      panel.id = PANEL_ID;
      holder.parentNode.insertBefore(panel, holder);
    }
    let live;
    try {
      live = await (await fetch("/redis/live")).json();
    } catch (e) {
      return;  // the run is ending; the next tick tries again
    }
    panel.innerHTML = gateChips(live.gates) + CHARTS.map(c => svgChart(c, live.series[c.source || "server"])).join("");
  }

  setInterval(draw, 2000);
  draw();
})();
