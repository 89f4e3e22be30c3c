import { readFile } from 'node:fs/promises';
import { openSenderAuth } from '../auth/open-sender-auth.js';
import { loadRules } from '../config/load.js';
import { normalizeIp } from '../net/ip.js';
import { DirectoryModel } from '../directory/directory-model.js';
import { openDnsbl } from '../dns/dnsbl-runtime.js';
import { freshLimitPorts } from '../policy/limits.js';
import { PolicyEngine } from '../policy/policy-engine.js';
import { systemClock } from '../runtime/clock.js';
import { renderText } from './check/render.js';
import { simulate } from './check/simulate.js';
import { configOption, parseCommandArgs } from './args.js';
import type { Command } from './commands.js';

const usage =
  'usage: portcullis check [--config FILE] --ip IP [--listener NAME] [--helo NAME] --from ADDR --to ADDR... [--header-from ADDR] [--message FILE] [--json]\n';

/** `<a@b>` as typed in SMTP becomes `a@b`, as the server hands it to the engine. */
const unbracket = (address: string): string => address.replace(/^<(.*)>$/, '$1');

/** `portcullis check`: one simulated session through the real engine, with real DNS lookups. */
export const checkCommand: Command = {
  summary: 'show what the filters would do to a client, sender and recipients, and why',
  async run(args) {
    const parsed = parseCommandArgs('check', usage, args, {
      ...configOption,
      ip: { type: 'string' },
      listener: { type: 'string' },
      helo: { type: 'string', default: 'client.invalid' },
      from: { type: 'string' },
      to: { type: 'string', multiple: true },
      'header-from': { type: 'string' },
      message: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    if (!parsed) return 2;
    const { values } = parsed;
    if (!values.ip || values.from === undefined || !values.to?.length) {
      process.stderr.write(`portcullis check: --ip, --from and at least one --to are required\n${usage}`);
      return 2;
    }
    try {
      normalizeIp(values.ip);
    } catch (err) {
      process.stderr.write(`portcullis check: --ip: ${(err as Error).message}\n${usage}`);
      return 2;
    }
    const rules = await loadRules(values.config);
    const listener = values.listener ?? rules.listeners[0]?.name ?? '';
    // Refused before any DNS work: a typo should not wait for a health round to be reported.
    if (!rules.listeners.some((l) => l.name === listener)) {
      process.stderr.write(`portcullis check: --listener: no listener '${listener}' in ${values.config} (have: ${rules.listeners.map((l) => l.name).join(', ')})\n`);
      return 2;
    }
    let message: Buffer | undefined;
    try {
      message = values.message === undefined ? undefined : await readFile(values.message);
    } catch (err) {
      process.stderr.write(`portcullis check: --message: ${(err as Error).message}\n`);
      return 2;
    }
    const dnsbl = await openDnsbl(rules, { clock: systemClock });
    try {
      const engine = new PolicyEngine(rules, {
        dnsbl: dnsbl.lookup,
        health: dnsbl.health,
        hostNames: dnsbl.hostNames,
        directory: DirectoryModel.fromRules(rules),
        limits: freshLimitPorts(),
        ...(rules.listeners.some((l) => l.senderAuth) ? { senderAuth: openSenderAuth(rules) } : {}),
      });
      const result = await simulate(engine, {
        ip: values.ip,
        listener,
        helo: values.helo,
        from: unbracket(values.from),
        to: values.to.map(unbracket),
        ...(values['header-from'] !== undefined ? { headerFrom: unbracket(values['header-from']) } : {}),
        ...(message ? { message } : {}),
      });
      const zones = dnsbl.describeHealth();
      if (values.json) {
        process.stdout.write(`${JSON.stringify({ ...result, zones: dnsbl.health.status() }, null, 2)}\n`);
      } else {
        process.stdout.write(renderText(result, zones));
      }
      return 0;
    } finally {
      dnsbl.close();
    }
  },
};
