/* Small SVG charts for the console: horizontal bars (reasons, precision) and vertical bars (counts). No library. */
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(width, height, label) {
    return el("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": label });
  }

  /** Horizontal bars: items [{label, value, text}] with values in [0, max]; text is written after the bar. */
  function hbars(container, items, { max, label, barClass, barW = 200, labelW = 70 } = {}) {
    const rowH = 22, width = 360;
    const top = max || Math.max(1e-9, ...items.map((item) => item.value));
    const chart = svg(width, Math.max(rowH, items.length * rowH), label || "bar chart");
    items.forEach((item, i) => {
      const y = i * rowH;
      chart.appendChild(el("text", { x: labelW - 6, y: y + 15, "text-anchor": "end", class: "axis" }, item.label));
      const w = Math.max(1, (barW * Math.max(0, item.value)) / top);
      chart.appendChild(el("rect", { x: labelW, y: y + 4, width: w, height: rowH - 8, class: barClass || "bar" }));
      chart.appendChild(el("text", { x: labelW + w + 6, y: y + 15, class: "value" }, item.text));
    });
    container.replaceChildren(chart);
  }

  /** Vertical bars of counts, with the first and last x labels and the highest count. */
  function vbars(container, counts, { first, last, label } = {}) {
    const width = 360, height = 110, bottom = 18, left = 28;
    const top = Math.max(1, ...counts);
    const chart = svg(width, height, label || "bar chart");
    const step = (width - left) / Math.max(1, counts.length);
    counts.forEach((count, i) => {
      const h = ((height - bottom - 6) * count) / top;
      const rect = el("rect", {
        x: left + i * step + 0.5, y: height - bottom - h, width: Math.max(1, step - 1), height: h, class: "bar",
      });
      rect.appendChild(el("title", {}, String(count)));
      chart.appendChild(rect);
    });
    chart.appendChild(el("text", { x: left - 4, y: 12, "text-anchor": "end", class: "axis" }, String(top)));
    chart.appendChild(el("text", { x: left - 4, y: height - bottom, "text-anchor": "end", class: "axis" }, "0"));
    if (first) chart.appendChild(el("text", { x: left, y: height - 4, class: "axis" }, first));
    if (last) chart.appendChild(el("text", { x: width, y: height - 4, "text-anchor": "end", class: "axis" }, last));
    container.replaceChildren(chart);
  }

  return { hbars, vbars };
})();
