// Draws each <canvas data-chart="ID"> from the JSON in the element #ID, with Chart.js.
// The same numbers are always in the table beside the chart; without scripts, that is what shows.
(function () {
  function draw(root) {
    if (typeof Chart === "undefined") return;
    root.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
      if (canvas.dataset.drawn) return;
      const source = document.getElementById(canvas.dataset.chart);
      if (!source) return;
      const data = JSON.parse(source.textContent);
      const text = getComputedStyle(document.body).color;
      new Chart(canvas, {
        type: data.kind,
        data: {
          labels: data.labels,
          datasets: data.series.map((s) => ({
            label: s.label,
            data: s.values,
            backgroundColor: s.colour,
            borderColor: s.colour,
            tension: 0.2,
          })),
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          color: text,
          plugins: { legend: { position: "bottom", labels: { color: text } } },
          scales: {
            x: { stacked: data.stacked, ticks: { color: text } },
            y: {
              stacked: data.stacked,
              beginAtZero: true,
              ticks: { color: text, precision: 0 },
              title: { display: Boolean(data.unit), text: data.unit, color: text },
            },
          },
        },
      });
      canvas.dataset.drawn = "1";
    });
  }
  document.addEventListener("DOMContentLoaded", () => draw(document));
  document.addEventListener("htmx:afterSwap", (event) => draw(event.target));
})();
