// Runs the built ct-record inside a topology's recording namespace around the scenario.
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { exitedWithin, type Topology, waitForLine } from '../test/helpers/netns.js';
import { runScenario, type ScenarioFlow } from './scenario.js';

export const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const RECORDER = fileURLToPath(new URL('../dist/recorder/cli.js', import.meta.url));
export const ANALYZER = fileURLToPath(new URL('../dist/analyzer/cli.js', import.meta.url));
const CAPTURING = /^ct-record: capturing conntrack events into .* \(Ctrl-C or SIGTERM to stop\)$/;

export interface RunningRecorder {
  child: ChildProcess;
  /** Everything ct-record printed on stderr so far. */
  stderr(): string;
}

/** Starts ct-record in the recording namespace; resolves once its subscription is live. */
export async function startRecorder(
  topo: Topology,
  journal: string,
  extra: readonly string[] = [],
): Promise<RunningRecorder> {
  const child = topo.spawn(topo.recordNs, [process.execPath, RECORDER, '-o', journal, ...extra]);
  return whenCapturing(child);
}

/** Collects a started ct-record's stderr; resolves once it says its subscription is live. */
export async function whenCapturing(child: ChildProcess): Promise<RunningRecorder> {
  let stderr = '';
  const stream = child.stderr as NonNullable<ChildProcess['stderr']>;
  stream.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  try {
    await waitForLine(stream, CAPTURING, 15_000);
  } catch (err) {
    throw new Error(`ct-record did not start: ${(err as Error).message}\n${stderr}`);
  }
  return { child, stderr: () => stderr };
}

export interface RecordedScenario {
  flows: ScenarioFlow[];
  /** ct-record's exit code, the signal that ended it, or why it was not waited for. */
  exit: number | string;
  stderr: string;
}

/** Records the scenario into `journal`: start, traffic, SIGTERM, wait for exit. */
export async function recordScenario(
  topo: Topology,
  journal: string,
  extra: readonly string[] = [],
): Promise<RecordedScenario> {
  const rec = await startRecorder(topo, journal, extra);
  const { flows } = await runScenario(topo);
  // No pause: every event is already queued on the recorder's socket when the last reply has
  // come back through the recording namespace, so a stop that drains must keep them all.
  rec.child.kill('SIGTERM');
  const exit = await exitedWithin(rec.child, 20_000);
  return { flows, exit, stderr: rec.stderr() };
}
