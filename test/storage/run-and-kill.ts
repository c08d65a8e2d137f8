/** Runs a child script on the running runtime and kills it with SIGKILL mid-work. */
import { spawn } from "node:child_process";
import { scriptCommand } from "../helpers/runtime.ts";

/**
 * Runs `script` on this runtime, reading `ack <n>` lines from its stdout; kills it with SIGKILL
 * as soon as it acknowledged `killAfter`, and resolves once it exited, with the last acknowledged
 * step. If the child exits by itself first, resolves with what it printed.
 */
export function runAndKill(
  script: string,
  args: string[],
  killAfter: number,
): Promise<{ acked: number; signal: string | null; stderr: string }> {
  const { command, args: runtimeArgs } = scriptCommand(script);
  const child = spawn(command, [...runtimeArgs, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let acked = 0;
  let pending = "";
  let stderr = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      const match = /^ack (\d+)$/.exec(line);
      if (match !== null) acked = Math.max(acked, Number(match[1]));
    }
    if (acked >= killAfter && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
    }
  });
  child.stderr.on("data", (chunk: string) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (_code, signal) => resolve({ acked, signal, stderr }));
  });
}
