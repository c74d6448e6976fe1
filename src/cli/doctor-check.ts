/**
 * What a `doctor` check is and returns, shared by the two plans (doctor-registry-checks.ts for this
 * host and its registry, doctor-agent-checks.ts through an agent's API), and the probe of the local
 * Proxy-Stone instance that both make.
 *
 * @module
 */
import http from 'node:http';
import https from 'node:https';
import type { FlagValue } from '../config/load.js';
import type { ClusterTarget } from './cluster-contract.js';

/** One check's verdict. */
export interface DoctorCheckResult {
  name: string;
  ok: boolean;
  detail: string;
  /** What to do about a failure. */
  hint?: string;
  /** The check did not apply or could not run (a failed earlier check, nothing configured). */
  skipped?: boolean;
}

/** `doctor --json`. */
export interface DoctorResult {
  checks: DoctorCheckResult[];
}

export interface DoctorCheck {
  name: string;
  run(): Promise<Omit<DoctorCheckResult, 'name'>>;
}

export interface DoctorOptions {
  /** Where the CLI talks to (the same target every other command would use). */
  target: ClusterTarget;
  /** True when no --endpoints/--agent (or env) named the target: the config may name etcd instead. */
  targetDefaulted: boolean;
  /** Flags to validate with the agent's configuration loader (setting names: `endpoints`, `health-url`, …). */
  configFlags: Record<string, FlagValue>;
  env?: NodeJS.ProcessEnv;
  /** Largest clock difference to etcd accepted, ms (default 2000). */
  maxSkewMs?: number;
}

/** The checks, in the order to run them, and how to release what they opened. */
export interface DoctorPlan {
  checks: DoctorCheck[];
  close(): Promise<void>;
}

/** One GET of a Proxy-Stone instance's health URL: 2xx passes. */
export async function probeInstance(url: string, timeoutMs: number): Promise<Omit<DoctorCheckResult, 'name'>> {
  const started = Date.now();
  try {
    const res = await httpGet(url, timeoutMs);
    const ms = Date.now() - started;
    if (res.status >= 200 && res.status < 300) return { ok: true, detail: `${url} answered ${res.status} in ${ms}ms` };
    return { ok: false, detail: `${url} answered ${res.status} in ${ms}ms`, hint: 'the agent would report this instance unhealthy; check the Proxy-Stone instance itself' };
  } catch (err) {
    return { ok: false, detail: `${url}: ${(err as Error).message}`, hint: 'is the Proxy-Stone instance running there? check SERVICE_HOST/SERVICE_PORT or --health-url' };
  }
}

function httpGet(url: string, timeoutMs: number): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? https : http).get(url, { agent: false, headers: { accept: 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs}ms`)), timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => reject(new Error(err.code === 'ECONNREFUSED' ? 'connection refused' : err.message)));
    req.on('close', () => clearTimeout(timer));
  });
}
