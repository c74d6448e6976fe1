/**
 * `tcp://host:port`: passes when a TCP connection is accepted within the timeout; the connection is
 * closed at once, nothing is sent.
 *
 * @module
 */
import net from 'node:net';
import type { Probe, ProbeOutcome } from '../health-checker.js';

export class TcpProbe implements Probe {
  constructor(readonly target: { host: string; port: number }) {}

  run(signal: AbortSignal): Promise<ProbeOutcome> {
    return new Promise((resolve, reject) => {
      // The signal (timeout, stop) destroys the socket, which rejects with the abort.
      const socket = net.connect({ host: this.target.host, port: this.target.port, signal });
      socket.once('connect', () => {
        socket.destroy();
        resolve({ ok: true, output: 'connected' });
      });
      socket.once('error', reject);
    });
  }

  close(): void {
    // No connection outlives a probe.
  }
}
