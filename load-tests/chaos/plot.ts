/** A dependency-free SVG: one panel per scenario, each request's latency against time, failures in red. */
export function latencySvg(series: Record<string, Array<{ t: number; ms: number; status: number | 'error' }>>, phaseMs: number): string {
  const names = Object.keys(series);
  const width = 900, panel = 180, pad = 40;
  const height = names.length * (panel + pad) + pad;
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`, '<rect width="100%" height="100%" fill="white"/>'];
  names.forEach((name, i) => {
    const samples = series[name]!;
    const top = pad + i * (panel + pad);
    const tMax = Math.max(3 * phaseMs, ...samples.map((s) => s.t));
    const msMax = Math.max(10, ...samples.map((s) => s.ms));
    const x = (t: number) => 60 + (t / tMax) * (width - 80);
    const y = (ms: number) => top + panel - (ms / msMax) * panel;
    parts.push(`<text x="60" y="${top - 8}" font-weight="bold">${name}</text>`);
    parts.push(`<line x1="60" y1="${top + panel}" x2="${width - 20}" y2="${top + panel}" stroke="#999"/><line x1="60" y1="${top}" x2="60" y2="${top + panel}" stroke="#999"/>`);
    parts.push(`<text x="8" y="${top + 10}">${Math.round(msMax)} ms</text><text x="8" y="${top + panel}">0</text>`);
    for (const at of [phaseMs, 2 * phaseMs]) parts.push(`<line x1="${x(at)}" y1="${top}" x2="${x(at)}" y2="${top + panel}" stroke="#f90" stroke-dasharray="4 3"/>`);
    parts.push(`<text x="${x(phaseMs) + 3}" y="${top + 12}" fill="#c60">fault</text><text x="${x(2 * phaseMs) + 3}" y="${top + 12}" fill="#c60">healed</text>`);
    const step = Math.max(1, Math.floor(samples.length / 4000)); // keep the file small
    for (let k = 0; k < samples.length; k += step) {
      const s = samples[k]!;
      const bad = s.status !== 200;
      parts.push(`<circle cx="${x(s.t).toFixed(1)}" cy="${y(bad && s.ms === 0 ? msMax : s.ms).toFixed(1)}" r="${bad ? 2.5 : 1.2}" fill="${bad ? '#d00' : '#36c'}" fill-opacity="${bad ? 1 : 0.5}"/>`);
    }
  });
  parts.push('</svg>');
  return parts.join('\n');
}
