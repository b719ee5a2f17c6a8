// Summarises a V8 .cpuprofile (written by `node --cpu-prof`) into the top self-time functions
// and self time per package/area, so a profiled bench run ends with a readable answer to
// "where does the server spend its CPU".
//
// Hand-written on purpose: the usual viewers (Chrome DevTools, speedscope) are interactive;
// the bench needs a few lines of text in its report and in the JSON result, which is a
// 100-line walk over the profile's nodes and samples.
//
// Usage on its own: node --import tsx bench/profile.ts <file.cpuprofile> [top=25]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  where: string;
  selfMs: number;
  pct: number;
  /** For functions of Node itself or native code: the nearest JS caller outside Node, by share. */
  callers?: Array<{ name: string; pct: number }>;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  /** Time not idle: everything except "(idle)". */
  busyMs: number;
  functions: ProfileEntry[];
  /**
   * Self time charged to the nearest frame outside Node's own code: a native writev called by
   * node:net called by fastify's reply counts for that fastify function.
   */
  owners: ProfileEntry[];
  areas: ProfileEntry[];
  /** Like `areas`, with Node internals and native code charged to the package that called them. */
  ownerAreas: ProfileEntry[];
  /** Inclusive (self + callees) time per area, counting each sample once per area on its stack. */
  inclusiveAreas: ProfileEntry[];
}

/** A short location: node_modules/<pkg>/… → pkg path, repo files relative to the repo. */
function shortWhere(url: string, line: number): string {
  if (!url) return '';
  let u = url.startsWith('file://') ? url.slice(7) : url;
  const nm = u.lastIndexOf('/node_modules/');
  if (nm >= 0) u = u.slice(nm + '/node_modules/'.length);
  else {
    for (const marker of ['/dist/', '/src/', '/bench/']) {
      const i = u.lastIndexOf(marker);
      if (i >= 0) {
        u = u.slice(i + 1);
        break;
      }
    }
  }
  return `${u}:${line + 1}`;
}

/** Which package or area a frame belongs to. */
export function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName.startsWith('(')) return functionName; // (garbage collector), (program), (idle)
    return '(native)';
  }
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0];
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  for (const marker of ['/dist/', '/src/']) {
    const i = url.lastIndexOf(marker);
    if (i >= 0) {
      const parts = url.slice(i + marker.length).split('/');
      return 'app:' + (parts.length > 2 ? parts.slice(0, 2).join('/') : parts[0]).replace(/\.(js|ts)$/, '');
    }
  }
  if (url.includes('/bench/')) return 'bench';
  return url;
}

export function summarizeProfile(file: string, top = 25): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of prof.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  // Self time per node: each sample's time delta belongs to the node it hit.
  const selfUs = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i + 1] ?? 0; // delta i+1 is the duration of sample i
    selfUs.set(prof.samples[i], (selfUs.get(prof.samples[i]) ?? 0) + dt);
    total += dt;
  }
  const label = (f: CallFrame) => {
    const where = shortWhere(f.url, f.lineNumber);
    return { key: `${f.functionName}@${where}`, name: f.functionName || '(anonymous)', where };
  };
  const isUserland = (f: CallFrame) => f.url !== '' && !f.url.startsWith('node:');
  /** Nearest ancestor-or-self frame outside Node internals/native code. */
  const ownerOf = (id: number): CallFrame | null => {
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      if (isUserland(f)) return f;
    }
    return null;
  };
  const fn = new Map<string, { name: string; where: string; us: number; callers: Map<string, number> }>();
  const owners = new Map<string, { name: string; where: string; us: number }>();
  const area = new Map<string, number>();
  const ownerArea = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let idle = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const f = node.callFrame;
    if (f.functionName === '(idle)') idle += us;
    const l = label(f);
    const e = fn.get(l.key) ?? { name: l.name, where: l.where, us: 0, callers: new Map<string, number>() };
    e.us += us;
    fn.set(l.key, e);
    const ownerFrame = ownerOf(id);
    const o = ownerFrame ? label(ownerFrame) : { key: l.key, name: l.name, where: l.where };
    const oe = owners.get(o.key) ?? { name: o.name, where: o.where, us: 0 };
    oe.us += us;
    owners.set(o.key, oe);
    if (ownerFrame !== f) {
      const ck = `${o.name} ${o.where}`;
      e.callers.set(ck, (e.callers.get(ck) ?? 0) + us);
    }
    const a = areaOf(f);
    area.set(a, (area.get(a) ?? 0) + us);
    const oa = ownerFrame ? areaOf(ownerFrame) : a;
    ownerArea.set(oa, (ownerArea.get(oa) ?? 0) + us);
    // Inclusive per area: walk the stack once, each area counted once per sample.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const ar = areaOf(byId.get(cur)!.callFrame);
      if (ar === '(root)' || seen.has(ar)) continue;
      seen.add(ar);
      inclusive.set(ar, (inclusive.get(ar) ?? 0) + us);
    }
  }
  const busy = total - idle;
  const pct = (us: number) => (busy > 0 ? (us / busy) * 100 : 0);
  const entries = (m: Map<string, number>) =>
    [...m.entries()]
      .filter(([k]) => k !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => ({ name: k, where: '', selfMs: us / 1000, pct: pct(us) }));
  return {
    file,
    totalMs: total / 1000,
    busyMs: busy / 1000,
    functions: [...fn.values()]
      .filter((e) => e.name !== '(idle)')
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({
        name: e.name,
        where: e.where,
        selfMs: e.us / 1000,
        pct: pct(e.us),
        ...(e.callers.size
          ? {
              callers: [...e.callers.entries()]
                .sort((a, b) => b[1] - a[1])
                .slice(0, 3)
                .map(([name, us]) => ({ name, pct: (us / e.us) * 100 })),
            }
          : {}),
      })),
    owners: [...owners.values()]
      .filter((e) => e.name !== '(idle)')
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ name: e.name, where: e.where, selfMs: e.us / 1000, pct: pct(e.us) })),
    areas: entries(area),
    ownerAreas: entries(ownerArea),
    inclusiveAreas: entries(inclusive),
  };
}

export function formatProfile(s: ProfileSummary, label: string): string {
  const lines: string[] = [];
  lines.push(`CPU profile — ${label}: ${(s.busyMs / 1000).toFixed(1)} s busy of ${(s.totalMs / 1000).toFixed(1)} s sampled (${s.file})`);
  lines.push('  top self time (% of busy time; ← nearest caller outside Node for Node/native functions):');
  for (const e of s.functions) {
    const by = e.callers?.length ? `  ← ${e.callers.map((c) => `${c.name} (${c.pct.toFixed(0)}%)`).join(', ')}` : '';
    lines.push(`    ${e.pct.toFixed(1).padStart(5)}%  ${e.name}  ${e.where}${by}`);
  }
  lines.push('  self time with Node internals/native charged to the nearest JS caller outside Node:');
  for (const e of s.owners) lines.push(`    ${e.pct.toFixed(1).padStart(5)}%  ${e.name}  ${e.where}`);
  lines.push('  self time by package/area (raw):');
  for (const e of s.areas.slice(0, 15)) lines.push(`    ${e.pct.toFixed(1).padStart(5)}%  ${e.name}`);
  lines.push('  self time by package/area, Node internals/native charged to their caller:');
  for (const e of s.ownerAreas.slice(0, 15)) lines.push(`    ${e.pct.toFixed(1).padStart(5)}%  ${e.name}`);
  lines.push('  inclusive time by package/area (a sample counts once per area on its stack):');
  for (const e of s.inclusiveAreas.slice(0, 15)) lines.push(`    ${e.pct.toFixed(1).padStart(5)}%  ${e.name}`);
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node --import tsx bench/profile.ts <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  process.stdout.write(formatProfile(summarizeProfile(file, Number(process.argv[3] ?? 25)), file) + '\n');
}
