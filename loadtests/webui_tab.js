// The Redis tab's test line, verdict, gates and live charts, drawn above the tab's table from /redis/live,
// and a one-line banner on every tab with the latest test's state and, once judged, its verdict and report.
// Locust's tabs hold tables only; this draws plain HTML and SVG every two seconds.
(() => {
  const PANEL_ID = "redis-live";
  const BANNER_ID = "redis-banner";
  const CHARTS = [
    { key: "ops", title: "server ops/s", unit: "ops/s", mean: "ops_per_s_mean",
      lines: [{ field: "ops_per_s", colour: "#1f77b4" }] },
    { key: "hit", title: "hit ratio (server)", unit: "%", scale: 100, max: 100,
      lines: [{ field: "hit_ratio", colour: "#2ca02c" }] },
    { key: "memory", title: "memory vs maxmemory", unit: "MiB", scale: 1 / 1048576,
      lines: [{ field: "used_memory", colour: "#1f77b4", label: "used" },
              { field: "maxmemory", colour: "#d62728", dash: "4 3", label: "maxmemory" }] },
    { key: "evictions", title: "evictions/s", unit: "keys/s", lines: [{ field: "evictions_per_s", colour: "#d62728" }] },
    { key: "p99", title: "worst p99 of any request", unit: "µs", source: "p99",
      lines: [{ field: "p99_us", colour: "#9467bd" }] },
  ];
  const STATE_COLOURS = {
    pass: "#2e7d32", passing: "#2e7d32", FAIL: "#c62828", failing: "#c62828",
    "at the end": "#757575", "no data yet": "#757575",
  };
  const esc = s => String(s ?? "").replace(/[&<>"]/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  const num = (v, digits = 0) => Number(v).toLocaleString("en-US", { maximumFractionDigits: digits });

  // One chart: x is seconds since the test started, y in the chart's unit; both axes labelled.
  function svgChart(chart, points, server) {
    const w = 300, h = 150, left = 52, right = 8, top = 18, bottom = 30;
    const scale = chart.scale || 1;
    const shown = points.filter(p => p.s !== null && p.s !== undefined);
    const values = shown.flatMap(p => chart.lines.map(l => p[l.field])).filter(v => v !== null && v !== undefined);
    const yMax = chart.max || Math.max(1, ...values.map(v => v * scale)) * 1.1;
    const s0 = 0, s1 = Math.max(1, ...shown.map(p => p.s));
    const x = s => left + (w - left - right) * ((s - s0) / (s1 - s0));
    const y = v => h - bottom - (h - top - bottom) * (v * scale / yMax);
    const paths = chart.lines.map(l => {
      const d = shown.filter(p => p[l.field] !== null && p[l.field] !== undefined)
        .map((p, i) => `${i ? "L" : "M"}${x(p.s).toFixed(1)},${y(p[l.field]).toFixed(1)}`).join(" ");
      return `<path d="${d}" fill="none" stroke="${l.colour}" stroke-width="1.5"${l.dash ? ` stroke-dasharray="${l.dash}"` : ""}/>`;
    }).join("");
    const last = shown.length ? shown[shown.length - 1] : {};
    const now = chart.lines.map(l => {
      const v = last[l.field];
      const text = v === null || v === undefined ? "-" : `${num(v * scale, chart.unit === "%" ? 1 : 0)} ${chart.unit}`;
      return `${l.label ? l.label + " " : ""}${text}`;
    }).join(" / ");
    const at = last.s === undefined ? "" : ` (at ${num(last.s)} s)`;
    const mean = chart.mean && server[chart.mean] !== null && server[chart.mean] !== undefined
      ? `; mean since the start <span class="mean">${num(server[chart.mean])} ${chart.unit}</span>` : "";
    const xTicks = [s0, (s0 + s1) / 2, s1].map(s =>
      `<text x="${x(s).toFixed(1)}" y="${h - bottom + 12}" font-size="9" fill="#666" text-anchor="middle">${num(s)}</text>`).join("");
    return `<div class="redis-chart" data-chart="${chart.key}" data-unit="${chart.unit}"
      style="display:inline-block;vertical-align:top;width:${w}px;margin:4px 12px 6px 0">
      <div class="title" style="font-size:12px;min-height:32px"><b>${chart.title}</b><br>last second${at}:
        <span class="now">${now}</span>${mean}</div>
      <svg width="${w}" height="${h}" style="background:#fafafa;border:1px solid #ddd">
        <line x1="${left}" y1="${h - bottom}" x2="${w - right}" y2="${h - bottom}" stroke="#bbb"/>
        <line x1="${left}" y1="${top}" x2="${left}" y2="${h - bottom}" stroke="#bbb"/>
        <text class="y-unit" x="4" y="11" font-size="9" fill="#444">${chart.unit}</text>
        <text x="${left - 4}" y="${top + 4}" font-size="9" fill="#666" text-anchor="end">${num(yMax, yMax < 10 ? 1 : 0)}</text>
        <text x="${left - 4}" y="${h - bottom}" font-size="9" fill="#666" text-anchor="end">0</text>
        ${xTicks}
        <text class="x-unit" x="${(left + w - right) / 2}" y="${h - 4}" font-size="9" fill="#444" text-anchor="middle">time since the test started (s)</text>
        ${paths}</svg></div>`;
  }

  function gateChips(gates) {
    if (!gates.length) return "";
    const chips = gates.map(g => `<span class="gate" data-gate="${esc(g.name)}" data-state="${esc(g.state)}" title="${esc(g.detail)}"
        style="display:inline-block;margin:2px 6px 2px 0;padding:2px 8px;border-radius:10px;color:white;font-size:12px;
        background:${STATE_COLOURS[g.state] || "#757575"}">${esc(g.name)} ${esc(g.state)}: <span class="gate-text">${esc(g.text)}</span></span>`).join("");
    const hints = gates.filter(g => g.look_at).map(g =>
      `<div class="look-at" data-gate="${esc(g.name)}" style="font-size:12px;color:#c62828">${esc(g.name)}: look at ${esc(g.look_at)}</div>`).join("");
    return `<div id="redis-gates" style="margin:6px 0">${chips}${hints}</div>`;
  }

  function verdictText(test) {
    const v = test.verdict;
    if (!v) return "";
    return v.interrupted ? "INTERRUPTED" : (v.passed ? "PASSED" : "FAILED");
  }

  function testLine(live) {
    const t = live.test;
    if (t.state === "idle") return `<div id="redis-test" data-state="idle">${esc(t.progress)} against ${esc(live.host)}</div>`;
    const v = t.verdict;
    const verdict = v ? ` · <b class="verdict" style="color:${v.passed ? "#2e7d32" : "#c62828"}">${verdictText(t)}</b>`
      + ` · ${num(v.throughput_ops_s)} requests/s (client mean)`
      + ` · <a id="redis-report-link" href="${esc(v.report_url)}" target="_blank">report.html</a>`
      : (t.state === "judging" ? " · judging: the report is being written" : "");
    const earlier = live.tests.filter(x => x.number !== t.number && x.report_url).map(x =>
      `<a class="earlier-report" href="${esc(x.report_url)}" target="_blank">test ${x.number} ${x.passed ? "passed" : "failed"}</a>`).join(", ");
    return `<div id="redis-test" data-state="${esc(t.state)}" data-test="${t.number}" style="font-size:14px;margin:6px 0">
      <b>Test ${t.number}</b> (${esc(t.name)}): <span class="progress">${esc(t.progress)}</span>${verdict}
      ${t.verdict ? '<div style="font-size:12px;color:#555">New starts another test, in a folder of its own.</div>' : ""}
      ${earlier ? `<div style="font-size:12px">Earlier tests: ${earlier}</div>` : ""}</div>`;
  }

  function banner(live) {
    let bar = document.getElementById(BANNER_ID);
    if (!bar) {
      bar = document.createElement("div");
      bar.id = BANNER_ID;
      bar.style.cssText = "font:13px sans-serif;padding:4px 12px;background:#eef3f8;border-bottom:1px solid #cdd;color:#222";
      document.body.insertBefore(bar, document.body.firstChild);
    }
    const t = live.test;
    const v = t.verdict;
    bar.dataset.state = t.state;
    let text = `Redis: ${esc(t.progress)}`;
    if (t.state !== "idle") text = `Redis test ${t.number}: ${esc(t.progress)}`;
    if (v) {
      const failed = v.gates.filter(g => g.state === "FAIL").length;
      text += ` · <b style="color:${v.passed ? "#2e7d32" : "#c62828"}">${verdictText(t)}</b>`
        + ` (${v.gates.length - failed} of ${v.gates.length} gates passed)`
        + ` · <a id="redis-banner-report" href="${esc(v.report_url)}" target="_blank">report.html</a>`;
    } else if (t.state === "judging") {
      text += " · judging";
    }
    bar.innerHTML = `${text} · details in the Redis tab`;
  }

  // Host is the deployment's endpoint: the users connect there whatever the field says, so it is read-only.
  function lockHost(host) {
    if (!host) return;  // until /redis/live has answered
    for (const input of document.querySelectorAll('input[name="host"]')) {
      if (input.dataset.redisLocked) continue;
      input.readOnly = true;
      input.dataset.redisLocked = "1";
      input.title = "The profile's endpoint: the load goes there (read-only)";
      const holder = input.closest(".MuiFormControl-root") || input.parentNode;
      const note = document.createElement("div");
      note.className = "redis-host-note";
      note.style.cssText = "font-size:12px;color:#555;margin-top:2px";
      note.textContent = `Read-only: the load goes to the profile's endpoint ${host}. ` +
        "To load another deployment, run redis-harness load with its profile.";
      holder.appendChild(note);
    }
  }

  let lastHost = null;
  new MutationObserver(() => lockHost(lastHost)).observe(document.documentElement, { childList: true, subtree: true });

  async function draw() {
    let live;
    try {
      live = await (await fetch("/redis/live")).json();
    } catch (e) {
      return;  // the session is ending; the next tick tries again
    }
    lastHost = live.host;
    lockHost(live.host);
    banner(live);
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
    const note = `<div style="font-size:11px;color:#666;margin:2px 0 6px">Server ops/s count every command Redis ran
      (each command of a pipeline, and the harness's own INFO); the report's requests/s count client calls. Each chart
      title and the table's "last second" row name the second they read; the table also gives the mean since the start.</div>`;
    panel.innerHTML = testLine(live) + gateChips(live.gates)
      + CHARTS.map(c => svgChart(c, live.series[c.source || "server"], live.server)).join("") + note;
  }

  setInterval(draw, 2000);
  draw();
})();
