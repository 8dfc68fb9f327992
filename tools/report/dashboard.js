// Draws every chart spec embedded in the page with ECharts' SVG renderer, so each chart's
// marks are elements of the DOM, and records on each chart how many values it drew.
(function () {
  "use strict";
  var specs = JSON.parse(document.getElementById("chart-data").textContent);
  specs.forEach(function (spec) {
    var node = document.getElementById(spec.id);
    var horizontal = spec.kind === "hbar";
    var category = {
      type: "category",
      data: spec.categories,
      inverse: horizontal,
      axisLabel: horizontal ? { width: 260, overflow: "truncate" } : { rotate: 30, hideOverlap: true },
    };
    var value = { type: "value", name: spec.unit };
    var chart = echarts.init(node, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      color: ["#2f6fb5", "#e0873a", "#3a9e6b", "#c4473d", "#7d5ab5", "#8c6d4f", "#d36fae", "#6f7d8c"],
      tooltip: { trigger: "axis" },
      legend: { top: 0, type: "scroll" },
      grid: { left: horizontal ? 280 : 56, right: 24, top: 48, bottom: horizontal ? 28 : 72 },
      xAxis: horizontal ? value : category,
      yAxis: horizontal ? category : value,
      series: spec.series.map(function (series) {
        return {
          name: series.name,
          type: spec.kind === "line" ? "line" : "bar",
          stack: spec.stacked ? "total" : undefined,
          connectNulls: true,
          data: series.data,
        };
      }),
    });
    var points = 0;
    spec.series.forEach(function (series) {
      series.data.forEach(function (item) { if (item !== null) { points += 1; } });
    });
    node.setAttribute("data-points", String(points));
  });
  document.body.setAttribute("data-charts-drawn", String(specs.length));
})();
