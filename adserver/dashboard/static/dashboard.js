// The daily chart: impressions (left axis) and clicks and leads (right axis) per UTC day, drawn with
// the vendored uPlot from the JSON block the page carries (no inline script, for a strict CSP).
(() => {
  "use strict";

  const holder = document.getElementById("daily-chart");
  const source = document.getElementById("daily-chart-data");
  if (!holder || !source || typeof uPlot === "undefined") {
    return;
  }
  const data = JSON.parse(source.textContent);
  const DAY = 86400;
  const days = data.days.map((day) => Date.parse(`${day}T00:00:00Z`) / 1000);

  // Whole numbers with thousands separators, never "1.2K"; no tick between two whole numbers.
  const wholeTicks = (chart, ticks) => ticks.map((tick) => (Number.isInteger(tick) ? tick.toLocaleString("en-US") : ""));
  // Room beside an axis for its longest tick label ("1,400,000").
  const tickRoom = (chart, labels) => 16 + 8 * Math.max(3, ...(labels || []).map((label) => label.length));
  // Counts are drawn from zero, with a little room above the highest.
  const fromZero = (chart, min, max) => [0, max > 0 ? max * 1.1 : 1];
  // The range's days edge to edge; a single day with half a day either side.
  const wholeRange = () => (days.length > 1 ? [days[0], days[days.length - 1]] : [days[0] - DAY / 2, days[0] + DAY / 2]);
  const height = () => (holder.clientWidth < 600 ? 220 : 280);
  const line = (label, stroke, scale) => ({ label, stroke, scale, width: 2 });

  const chart = new uPlot(
    {
      width: holder.clientWidth,
      height: height(),
      // The figures are per UTC day: show the days as UTC whatever the browser's time zone.
      tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
      scales: { x: { time: true, range: wholeRange }, impressions: { range: fromZero }, events: { range: fromZero } },
      legend: { live: false },
      series: [
        {},
        line("Impressions", "#2563eb", "impressions"),
        line("Clicks", "#d97706", "events"),
        line("Leads", "#059669", "events"),
      ],
      axes: [
        { incrs: [1, 2, 7, 14, 30, 61, 91, 182, 365].map((count) => count * DAY) }, // whole days, never hours
        { scale: "impressions", label: "Impressions", values: wholeTicks, size: tickRoom },
        { scale: "events", label: "Clicks and leads", side: 1, values: wholeTicks, size: tickRoom, grid: { show: false } },
      ],
    },
    [days, data.impressions, data.clicks, data.leads],
    holder,
  );

  new ResizeObserver(() => {
    if (holder.clientWidth !== chart.width) {
      chart.setSize({ width: holder.clientWidth, height: height() });
    }
  }).observe(holder);
})();
