import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { UserError, EXIT } from '../cli/errors.js';
import { DEFAULT_ETCD_ENDPOINT } from '../registry/endpoint.js';

export default class Demo extends BaseCommand {
  static override summary = 'Run three agents with sample upstreams in one process, on an in-memory registry.';
  static override description = `A cluster in one command: each agent sits beside a small sample upstream with a /health endpoint and serves its HTTP API on 127.0.0.1. The agents share an in-memory registry that nothing outside this process sees, or etcd (or Redis, with one redis:// URL) with --endpoints. Runs until Ctrl-C.

Make an upstream fail or flap to watch the cluster react:
  curl -X POST <upstream>/admin/down | /admin/up | /admin/flap`;

  static override examples = [
    '<%= config.bin %> demo',
    '<%= config.bin %> demo --agents 5 --base-port 8791',
    '<%= config.bin %> demo --endpoints http://127.0.0.1:2379',
  ];

  static override enableJsonFlag = false;
  static override flags = {
    agents: Flags.integer({ summary: 'How many agents to run.', default: 3, min: 1, max: 20 }),
    'base-port': Flags.integer({ summary: 'API port of the first agent; the others follow. 0 picks free ports.', default: 8791, min: 0, max: 65515 }),
    endpoints: Flags.string({ summary: 'etcd endpoints (comma-separated) or one redis:// URL; default: a memory registry shared by the demo\'s agents only.', env: 'SERVICE_DISCOVERY_ENDPOINTS' }),
    namespace: Flags.string({ summary: 'Registry namespace.', default: 'proxy-stone', env: 'SERVICE_DISCOVERY_NAMESPACE' }),
    verbose: Flags.boolean({ summary: 'Log agent events (JSON lines on stderr).', default: false }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Demo);
    const { startDemo } = await import('../demo/demo.js');
    const { createLogger, silentLogger } = await import('../util/logger.js');
    const endpoints = flags.endpoints?.split(',').map((e) => e.trim()).filter(Boolean);
    const demo = await startDemo({
      agents: flags.agents,
      basePort: flags['base-port'],
      endpoints,
      namespace: flags.namespace,
      logger: flags.verbose ? createLogger({ level: 'info' }) : silentLogger,
    }).catch((err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') {
        throw new UserError(`a demo port is already in use (${(err as Error).message}); pick others with --base-port`, EXIT.usage);
      }
      throw err;
    });
    this.log(`proxy-stone-sd demo: ${demo.instances.length} agents on ${demo.registry.kind === 'memory' ? 'an in-memory registry' : `${demo.registry.kind} ${demo.registry.description}`}`);
    if (demo.registry.kind === 'memory') {
      // Said once, here: a real agent on the memory registry logs a registry.memory warning instead.
      this.log(`  (only these agents share it: nothing outside this process sees them; --endpoints ${DEFAULT_ETCD_ENDPOINT} runs them on etcd)`);
    }
    this.log('');
    for (const { agent, upstream, apiUrl } of demo.instances) {
      this.log(`  ${agent.id}  ${agent.config.service.region}/${agent.config.service.zone}`);
      this.log(`    agent API  ${apiUrl}/service-discovery/status`);
      this.log(`    upstream   ${upstream.url}/health   (POST ${upstream.url}/admin/down | up | flap)`);
    }
    const first = demo.instances[0]!.apiUrl;
    // Printed to be pasted: what runs this program from where it was started (./bin/run.js in a clone).
    const { invokedAs } = await import('../cli/invocation.js');
    const bin = invokedAs({ script: process.argv[1] ?? this.config.bin, cwd: process.cwd(), pathEnv: process.env.PATH ?? '', bin: this.config.bin });
    const tries = [
      `curl ${first}/service-discovery/services`,
      `curl ${first}/service-discovery/topology`,
      `curl -N ${first}/service-discovery/events   # live; Ctrl-C to stop`,
      `${bin} topology --agent ${first}`,
    ];
    // An agent with a zone-mate can be disabled (its zone stays served); one alone in its zone is
    // kept by the capacity guard (exit 5). Both are worth a newcomer's try.
    const zoneOf = (i: (typeof demo.instances)[number]) => `${i.agent.config.service.region}/${i.agent.config.service.zone}`;
    const shared = demo.instances.find((i, n) => demo.instances.some((o, m) => m !== n && zoneOf(o) === zoneOf(i)));
    const alone = demo.instances.find((i) => demo.instances.filter((o) => zoneOf(o) === zoneOf(i)).length === 1);
    if (shared) tries.push(`${bin} services disable ${shared.agent.id} --reason "try it" --agent ${first}   # drains, then out of traffic`, `${bin} services enable ${shared.agent.id} --agent ${first}`);
    if (alone && demo.instances.length > 1) tries.push(`${bin} services disable ${alone.agent.id} --agent ${first}   # refused: the last of its zone`);
    // Last: a flapping instance changes what the capacity guard says about its zone.
    tries.push(`curl -X POST ${demo.instances.at(-1)!.upstream.url}/admin/flap   # flaps its health; /admin/up ends it`);
    this.log(`\nTry:\n${tries.map((t) => `  ${t}`).join('\n')}\n\nCtrl-C to stop.`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    this.logToStderr('stopping the demo...');
    await demo.stop();
  }
}
