/**
 * A hand-written SVG bar chart: throughput (y) for each connection count (x, one group of bars
 * per count), one bar per series, with the value on each bar. No chart library.
 */
export interface ChartSeries {
  readonly label: string;
  readonly color: string;
  readonly points: readonly { readonly x: number; readonly y: number }[];
}

const WIDTH = 720;
const HEIGHT = 400;
const MARGIN = { top: 56, right: 20, bottom: 84, left: 72 };

function xmlEscape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** A round axis maximum above `max`: 1, 2 or 5 times a power of ten, at least `max`. */
function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

function compact(n: number): string {
  if (n >= 10_000) return `${Math.round(n / 1000)}k`;
  if (n >= 1000) return `${(n / 1000).toFixed(1)}k`;
  return String(Math.round(n));
}

export function throughputChart(
  title: string,
  series: readonly ChartSeries[],
  /** A line under the title (where and when it was measured). */
  note = "",
): string {
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  const top = niceMax(Math.max(0, ...series.flatMap((s) => s.points.map((p) => p.y))));
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const groupW = plotW / Math.max(1, xs.length);
  const barW = Math.min(48, (groupW * 0.8) / Math.max(1, series.length));
  const yOf = (v: number) => MARGIN.top + plotH - (v / top) * plotH;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" ` +
      `viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="system-ui, sans-serif" font-size="12">`,
    `<title>${xmlEscape(title)}</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
    `<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="14" font-weight="600">` +
      `${xmlEscape(title)}</text>`,
    `<text x="${WIDTH / 2}" y="40" text-anchor="middle" font-size="11" fill="#666">` +
      `${xmlEscape(note)}</text>`,
  );
  // Horizontal grid lines with labels, five steps.
  for (let i = 0; i <= 5; i++) {
    const v = (top / 5) * i;
    const y = yOf(v).toFixed(1);
    out.push(
      `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y}" y2="${y}" ` +
        `stroke="${i === 0 ? "#333" : "#e5e7eb"}"/>`,
      `<text x="${MARGIN.left - 8}" y="${y}" dy="4" text-anchor="end" fill="#555">` +
        `${compact(v)}</text>`,
    );
  }
  out.push(
    `<text transform="translate(18 ${MARGIN.top + plotH / 2}) rotate(-90)" ` +
      `text-anchor="middle" fill="#333">writes/s</text>`,
  );
  xs.forEach((x, gi) => {
    const groupX = MARGIN.left + gi * groupW;
    const start = groupX + (groupW - barW * series.length) / 2;
    series.forEach((s, si) => {
      const point = s.points.find((p) => p.x === x);
      if (point === undefined) return;
      const bx = start + si * barW;
      const by = yOf(point.y);
      const h = MARGIN.top + plotH - by;
      out.push(
        `<rect x="${(bx + 1).toFixed(1)}" y="${by.toFixed(1)}" width="${(barW - 2).toFixed(1)}" ` +
          `height="${h.toFixed(1)}" fill="${s.color}"><title>${xmlEscape(s.label)}, ${x} ` +
          `connections: ${Math.round(point.y)} writes/s</title></rect>`,
        `<text x="${(bx + barW / 2).toFixed(1)}" y="${(by - 4).toFixed(1)}" ` +
          `text-anchor="middle" font-size="10" fill="#333">${compact(point.y)}</text>`,
      );
    });
    out.push(
      `<text x="${(groupX + groupW / 2).toFixed(1)}" y="${MARGIN.top + plotH + 18}" ` +
        `text-anchor="middle" fill="#333">${x}</text>`,
    );
  });
  out.push(
    `<text x="${MARGIN.left + plotW / 2}" y="${MARGIN.top + plotH + 36}" text-anchor="middle" ` +
      `fill="#333">concurrent connections (one request in flight each)</text>`,
  );
  // Legend, one row under the axis label.
  let lx = MARGIN.left;
  const ly = HEIGHT - 18;
  for (const s of series) {
    out.push(
      `<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${s.color}"/>`,
      `<text x="${lx + 18}" y="${ly}" fill="#333">${xmlEscape(s.label)}</text>`,
    );
    lx += 30 + s.label.length * 6.5;
  }
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
