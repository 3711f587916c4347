// A small SVG chart of series over time buckets: no chart library (they are large),
// with the figures also in a table for screen readers.

export interface Series {
  name: string;
  color: string;
  values: (number | null)[];
}

const W = 560;
const H = 160;
const PAD = { left: 44, right: 8, top: 10, bottom: 22 };

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function Chart({ title, times, series, unit }: { title: string; times: string[]; series: Series[]; unit: string }) {
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null))));
  const n = Math.max(1, times.length - 1);
  const x = (i: number) => PAD.left + (i / n) * (W - PAD.left - PAD.right);
  const y = (v: number) => PAD.top + (1 - v / max) * (H - PAD.top - PAD.bottom);
  const fmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const ticks = times.length > 1 ? [0, Math.floor(times.length / 2), times.length - 1] : [0];
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${title} chart`}>
        {[0, 0.5, 1].map((f) => (
          <g key={f}>
            <line x1={PAD.left} x2={W - PAD.right} y1={y(max * f)} y2={y(max * f)} className="chart-grid" />
            <text x={PAD.left - 4} y={y(max * f) + 4} textAnchor="end" className="chart-label">
              {Math.round(max * f * 100) / 100}
            </text>
          </g>
        ))}
        {ticks.map((i, k) =>
          times[i] ? (
            <text key={i} x={x(i)} y={H - 6} textAnchor={k === 0 ? "start" : k === ticks.length - 1 ? "end" : "middle"} className="chart-label">
              {fmt.format(new Date(times[i]))}
            </text>
          ) : null,
        )}
        {series.map((s) => {
          const points = s.values.map((v, i) => (v === null ? null : `${x(i)},${y(v)}`));
          const segments: string[][] = [[]];
          for (const p of points) {
            if (p === null) segments.push([]);
            else segments[segments.length - 1]!.push(p);
          }
          // Lines join neighbouring buckets; a lone bucket with data (its neighbours
          // empty) is a dot.
          return (
            <g key={s.name}>
              {segments
                .filter((seg) => seg.length > 1)
                .map((seg, k) => (
                  <polyline key={k} points={seg.join(" ")} fill="none" stroke={s.color} strokeWidth={2} />
                ))}
              {s.values.map((v, i) =>
                v === null || (s.values[i - 1] ?? null) !== null || (s.values[i + 1] ?? null) !== null ? null : (
                  <circle key={i} cx={x(i)} cy={y(v)} r={3} fill={s.color} />
                ),
              )}
            </g>
          );
        })}
      </svg>
      <div className="chart-legend">
        {series.map((s) => (
          <span key={s.name}>
            <span className="legend-swatch" style={{ background: s.color }} /> {s.name} ({unit})
          </span>
        ))}
      </div>
      {/* A table is as wide as its content whatever its width: the box around it clips it. */}
      <div className="sr-only">
      <table>
        <caption>{title}</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            {series.map((s) => (
              <th key={s.name} scope="col">
                {s.name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {times.map((t, i) => (
            <tr key={t}>
              <td>{t}</td>
              {series.map((s) => (
                <td key={s.name}>{s.values[i] ?? ""}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      </div>
    </figure>
  );
}
