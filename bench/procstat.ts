/**
 * CPU time and memory of processes, read from Linux's /proc: what each node of a cluster (and the
 * load generator) spent during a measuring window, the machine's idle share, and peak memory.
 */
import { readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ: 100 on every Linux we run). */
const TICKS_PER_SECOND = 100;

export interface CpuSample {
  /** User + system CPU time of the process (all threads), seconds; NaN when unreadable. */
  readonly cpuSeconds: number;
  /** Wall time of the sample (performance.now(), ms). */
  readonly at: number;
}

export function cpuSample(pid: number): CpuSample {
  const at = performance.now();
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after "(comm) ".
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { cpuSeconds: ticks / TICKS_PER_SECOND, at };
  } catch {
    return { cpuSeconds: Number.NaN, at };
  }
}

/** CPU used between two samples, in percent of one core. */
export function cpuPercent(from: CpuSample, to: CpuSample): number {
  const wall = (to.at - from.at) / 1000;
  return wall > 0 ? ((to.cpuSeconds - from.cpuSeconds) / wall) * 100 : Number.NaN;
}

/** Peak resident memory (VmHWM) in MiB; NaN when unreadable (not Linux, or exited). */
export function peakRssMiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
    return match ? Number(match[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** The whole machine's CPU time so far (all cores), in clock ticks, from /proc/stat. */
export interface MachineSample {
  readonly idleTicks: number;
  readonly totalTicks: number;
}

export function machineSample(): MachineSample {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] as string;
    // cpu user nice system idle iowait irq softirq steal …: idle and iowait count as idle.
    const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const idleTicks = (ticks[3] ?? 0) + (ticks[4] ?? 0);
    return { idleTicks, totalTicks: ticks.reduce((a, b) => a + b, 0) };
  } catch {
    return { idleTicks: Number.NaN, totalTicks: Number.NaN };
  }
}

/** The share of the machine's CPU time (all cores) left idle between two samples, percent. */
export function idlePercent(from: MachineSample, to: MachineSample): number {
  const total = to.totalTicks - from.totalTicks;
  return total > 0 ? ((to.idleTicks - from.idleTicks) / total) * 100 : Number.NaN;
}

/** The CPU of some processes and the machine's idle share over a load's measuring window. */
export class CpuWindow {
  readonly #pids: readonly number[];
  #opened: CpuSample[] = [];
  #closed: CpuSample[] = [];
  readonly #machine: MachineSample[] = [];

  constructor(pids: readonly number[]) {
    this.#pids = pids;
  }

  /** Samples at each edge of the window: pass it as the load's `onWindow`. */
  readonly onWindow = (edge: "open" | "close"): void => {
    const samples = this.#pids.map((pid) => cpuSample(pid));
    if (edge === "open") this.#opened = samples;
    else this.#closed = samples;
    this.#machine.push(machineSample());
  };

  /** CPU of the process at `i` (in the constructor's list) over the window, % of one core. */
  cpuPercent(i: number): number {
    const from = this.#opened[i];
    const to = this.#closed[i];
    return from && to ? cpuPercent(from, to) : Number.NaN;
  }

  /** Share of the machine's CPU time (all cores) left idle over the window, percent. */
  get idlePercent(): number {
    const [from, to] = this.#machine;
    return from && to ? idlePercent(from, to) : Number.NaN;
  }
}
