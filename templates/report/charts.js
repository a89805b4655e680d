// report.html's charts: the run's timeline (report/timeline.py, as JSON in #timeline-data)
// drawn with the vendored uPlot. One chart per panel, all on one time axis: hovering one
// shows the time and every series' value, with its unit, in every chart's legend;
// dragging across a chart zooms all of them to that span, a double click zooms back out.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("timeline-data").textContent);
  const root = document.getElementById("timeline");
  const strip = document.getElementById("timeline-strip");
  const WIDTH = Math.max(600, Math.min(1060, root.clientWidth || 1060));
  const HEIGHT = 220;
  const AXIS = 90; // every chart's y axis as wide, so all plots start at the same x
  const RED = "#d62728";
  const DASH = {solid: [], dotted: [2, 3], dashed: [6, 4]};
  const MARK = {fault: [RED, [6, 4]], breaker: ["#ff7f0e", [2, 3]], phase: ["#555555", [2, 3]]};
  const LANES = 4;

  function figure(value, unit) {
    if (value == null || Number.isNaN(value)) return "–";
    const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
    return value.toLocaleString("en-US", {maximumFractionDigits: digits}) + " " + unit;
  }

  function seconds(value) {
    return value == null ? "–" : value.toFixed(1) + " s";
  }

  function tick(value) {
    return value == null ? "" : value.toLocaleString("en-US", {maximumFractionDigits: 2});
  }

  // Every panel's time axis from 0 to the run's end, whatever its own samples cover.
  function padded(panel) {
    const x = panel.x.slice();
    const columns = panel.series.map((s) => s.values.slice());
    if (!x.length || x[0] > 0) {
      x.unshift(0);
      columns.forEach((c) => c.unshift(null));
    }
    if (x[x.length - 1] < data.end) {
      x.push(data.end);
      columns.forEach((c) => c.push(null));
    }
    return [x, ...columns, ...panel.thresholds.map((t) => x.map(() => t.value))];
  }

  function zeroBased(panel) {
    return (u, min, max) => {
      if (panel.top != null) return [0, panel.top];
      const top = max != null && max > 0 ? max : 1;
      return [0, uPlot.rangeNum(0, top, 0.1, true)[1]];
    };
  }

  function shadeWindows(u) {
    const {ctx, bbox} = u;
    ctx.save();
    ctx.fillStyle = "rgba(214, 39, 40, 0.12)";
    for (const w of data.windows) {
      const x0 = Math.max(bbox.left, u.valToPos(w.begin, "x", true));
      const x1 = Math.min(bbox.left + bbox.width, u.valToPos(w.end, "x", true));
      if (x1 >= x0) ctx.fillRect(x0, bbox.top, Math.max(1, x1 - x0), bbox.height);
    }
    ctx.restore();
  }

  function drawMarks(u) {
    const {ctx, bbox} = u;
    ctx.save();
    ctx.lineWidth = 1.5 * uPlot.pxRatio;
    for (const m of data.marks) {
      const x = Math.round(u.valToPos(m.t, "x", true));
      if (x < bbox.left || x > bbox.left + bbox.width) continue;
      const [colour, dash] = MARK[m.kind];
      ctx.strokeStyle = colour;
      ctx.setLineDash(dash.map((d) => d * uPlot.pxRatio));
      ctx.beginPath();
      ctx.moveTo(x, bbox.top);
      ctx.lineTo(x, bbox.top + bbox.height);
      ctx.stroke();
    }
    ctx.restore();
  }

  const charts = [];
  let syncing = false;

  // The strip above the charts names every mark and error window at its time.
  function placeLabels() {
    const u = charts[0];
    if (!u || !strip) return;
    const offset = u.over.getBoundingClientRect().left - strip.getBoundingClientRect().left;
    for (const label of strip.querySelectorAll(".mark-label")) {
      const t = Number(label.dataset.t);
      const inside = t >= u.scales.x.min && t <= u.scales.x.max;
      label.style.display = inside ? "" : "none";
      label.style.left = offset + u.valToPos(t, "x") + "px";
    }
  }

  function syncZoom(u, key) {
    if (key !== "x" || syncing) return;
    syncing = true;
    for (const other of charts) {
      if (other !== u) other.setScale("x", {min: u.scales.x.min, max: u.scales.x.max});
    }
    syncing = false;
    placeLabels();
  }

  function options(panel) {
    const series = [{label: "time", value: (u, v) => seconds(v)}];
    for (const s of panel.series) {
      series.push({label: s.label, stroke: s.colour, dash: DASH[s.style], width: 1.5,
                   value: (u, v) => figure(v, panel.unit)});
    }
    for (const t of panel.thresholds) {
      series.push({label: t.label, stroke: RED, dash: [6, 4], width: 1.5, points: {show: false},
                   value: (u, v) => figure(v, panel.unit)});
    }
    return {
      title: panel.title,
      width: WIDTH,
      height: HEIGHT,
      // One time across the charts: a vertical cursor line only (a horizontal one means nothing in another chart).
      cursor: {sync: {key: "run"}, drag: {x: true, y: false}, y: false},
      legend: {live: true},
      scales: {x: {time: false}, y: panel.log ? {distr: 3, log: 10} : {range: zeroBased(panel)}},
      axes: [
        {label: "seconds since the run started", labelSize: 20, size: 40, values: (u, ticks) => ticks.map(tick)},
        {label: panel.axis, labelSize: 20, size: AXIS, values: (u, ticks) => ticks.map(tick)},
      ],
      series: series,
      hooks: {drawClear: [shadeWindows], draw: [drawMarks], setScale: [syncZoom]},
    };
  }

  function labelStrip() {
    if (!strip || !data.panels.length) return; // labels are placed by the charts' time axis
    const labels = [...data.windows.map((w) => ({t: w.begin, label: w.label, kind: "window"})),
                    ...data.marks.map((m) => ({t: m.t, label: m.label, kind: m.kind}))]
      .sort((a, b) => a.t - b.t);
    const lanes = Math.max(1, Math.min(labels.length, LANES));
    strip.style.height = lanes * 18 + 4 + "px";
    labels.forEach((l, n) => {
      const el = document.createElement("span");
      el.className = "mark-label mark-" + l.kind;
      el.dataset.t = l.t;
      el.dataset.kind = l.kind;
      el.style.top = (n % lanes) * 18 + "px";
      el.textContent = l.label;
      el.title = l.label + " at " + seconds(l.t);
      strip.appendChild(el);
    });
  }

  labelStrip();
  for (const panel of data.panels) {
    const box = document.createElement("div");
    box.className = "chart";
    box.dataset.panel = panel.title;
    root.appendChild(box);
    charts.push(new uPlot(options(panel), padded(panel), box));
  }
  placeLabels();
  window.reportCharts = charts; // for tests, and for a reader's console
})();
