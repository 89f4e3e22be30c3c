/**
 * Private Postfix instances: each with its own configuration, queue, data and Maildir directories
 * under a temporary folder, loopback only. A back end runs smtpd on a loopback port and delivers every
 * recipient of its domain by virtual(8) into one Maildir; a sender relays everything it is given to
 * one relay host with Postfix's default SMTP client settings (destination concurrency 20, connection
 * caching). The master runs in the foreground (`master -d`) as a child of the test, so stopping it
 * (SIGTERM) takes every Postfix process with it. A Postfix master must start as root.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { freePort, launch, pause, run, tempDir, waitForPorts, type Running } from './peers.js';

const MASTER = '/usr/lib/postfix/sbin/master';

/** Whether this process may start a Postfix master; tests that need one are skipped otherwise. */
export const canRunPostfix = process.getuid?.() === 0;

export interface PostfixBackend extends Running {
  port: number;
  /** Every delivered message, as Postfix wrote it into the Maildir. */
  delivered(): Promise<string[]>;
  /** Postfix's own log (`maillog_file`), for failure messages. */
  log(): Promise<string>;
}

/** The uid and gid of Postfix's unprivileged `mail_owner`, which also owns the Maildir. */
async function postfixIds(): Promise<{ uid: number; gid: number }> {
  const res = await run('id', ['postfix'], { timeoutMs: 5000 });
  const m = /uid=(\d+).*gid=(\d+)/.exec(res.stdout);
  if (!m) throw new Error(`no postfix user: ${res.stdout}${res.stderr}`);
  return { uid: Number(m[1]), gid: Number(m[2]) };
}

/** The daemons every instance runs, without chroot (the Debian default would need copies of /etc files in the queue). */
const COMMON_SERVICES = [
  'cleanup unix n - n - 0 cleanup',
  'qmgr unix n - n 300 1 qmgr',
  'rewrite unix - - n - - trivial-rewrite',
  'bounce unix - - n - 0 bounce',
  'defer unix - - n - 0 bounce',
  'trace unix - - n - 0 bounce',
  'verify unix - - n - 1 verify',
  'proxymap unix - - n - - proxymap',
  'error unix - - n - - error',
  'retry unix - - n - - error',
  'discard unix - - n - - discard',
  'anvil unix - - n - 1 anvil',
  'scache unix - - n - 1 scache',
  'postlog unix-dgram n - n - 1 postlogd',
];

interface Instance extends Running {
  dir: string;
  etc: string;
  log(): Promise<string>;
}

/**
 * Writes main.cf (common settings plus `main`) and master.cf (common services plus `services`) into
 * a fresh folder, creates the queue with `postfix check`, and runs the master; `listens` says
 * whether to wait for an inet listener.
 */
async function startInstance(main: (dir: string) => string[], services: string[], listens: boolean): Promise<Instance> {
  const dir = await tempDir('portcullis-postfix-');
  // Postfix's daemons run as its own user and must reach their queue inside this folder.
  await fs.chmod(dir, 0o755);
  const { uid, gid } = await postfixIds();
  const etc = path.join(dir, 'etc');
  const data = path.join(dir, 'data');
  const maillog = path.join(dir, 'maillog');
  for (const d of [etc, data, path.join(dir, 'queue'), path.join(dir, 'mail')]) await fs.mkdir(d);
  await fs.chown(data, uid, gid);
  await fs.chown(path.join(dir, 'mail'), uid, gid);
  const common = [
    'compatibility_level = 3.6',
    `queue_directory = ${dir}/queue`,
    `data_directory = ${data}`,
    'inet_interfaces = loopback-only',
    'inet_protocols = ipv4',
    'mydestination =',
    'relay_domains =',
    'mynetworks = 127.0.0.0/8',
    'alias_maps =',
    'alias_database =',
    `maillog_file_prefixes = ${dir}`,
    `maillog_file = ${maillog}`,
  ];
  await fs.writeFile(path.join(etc, 'main.cf'), [...common, ...main(dir), ''].join('\n'));
  await fs.writeFile(path.join(etc, 'master.cf'), [...services, ...COMMON_SERVICES, ''].join('\n'));
  const log = (): Promise<string> => fs.readFile(maillog, 'utf8').catch(() => '');
  // `postfix check` creates the queue's subdirectories with their owners and modes.
  const check = await run('postfix', ['-c', etc, 'check'], { timeoutMs: 30_000 });
  if (check.code !== 0) {
    await fs.rm(dir, { recursive: true, force: true });
    throw new Error(`postfix check failed (${check.code}): ${check.stdout}${check.stderr}${await log()}`);
  }
  const master = launch(MASTER, ['-c', etc, '-d']);
  const stop = async (graceMs?: number): Promise<void> => {
    await master.stop(graceMs);
    await fs.rm(dir, { recursive: true, force: true });
  };
  try {
    if (listens) await waitForPorts(master, 'tcp', 1, 15_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { ...master, dir, etc, log, stop };
}

/**
 * Starts a back end: `domain` recipients are delivered, XFORWARD is allowed from loopback (the edge
 * sends it); `settings` are further main.cf lines (e.g. `smtpd_recipient_restrictions`).
 */
export async function startPostfixBackend(domain = 'example.test', settings: string[] = []): Promise<PostfixBackend> {
  const { uid, gid } = await postfixIds();
  const port = await freePort();
  const instance = await startInstance(
    (dir) => [
      'myhostname = backend.interop.test',
      `virtual_mailbox_domains = ${domain}`,
      `virtual_mailbox_base = ${dir}/mail`,
      'virtual_mailbox_maps = static:inbox/',
      `virtual_uid_maps = static:${uid}`,
      `virtual_gid_maps = static:${gid}`,
      `virtual_minimum_uid = ${Math.min(uid, 100)}`,
      'smtpd_authorized_xforward_hosts = 127.0.0.0/8',
      ...settings,
    ],
    [`127.0.0.1:${port} inet n - n - - smtpd`, 'virtual unix - n n - - virtual'],
    true,
  );
  const inbox = path.join(instance.dir, 'mail', 'inbox', 'new');
  return {
    ...instance,
    port,
    delivered: async () => {
      const names = (await fs.readdir(inbox).catch(() => [] as string[])).sort();
      return Promise.all(names.map((n) => fs.readFile(path.join(inbox, n), 'latin1')));
    },
  };
}

export interface PostfixSender extends Running {
  /** Queues one message with Postfix's sendmail; the instance relays it to its relay host. */
  submit(from: string, to: string, message: string): Promise<void>;
  /** How many deliveries Postfix logged as `sent` and as `deferred` so far. */
  outcomes(): Promise<{ sent: number; deferred: number; lines: string }>;
}

/** Starts a sender that relays everything to 127.0.0.1:`relayPort` with Postfix's default client settings. */
export async function startPostfixSender(relayPort: number): Promise<PostfixSender> {
  const instance = await startInstance(
    () => ['myhostname = sender.interop.test', `relayhost = [127.0.0.1]:${relayPort}`],
    ['pickup unix n - n 60 1 pickup', 'smtp unix - - n - - smtp', 'relay unix - - n - - smtp'],
    false,
  );
  return {
    ...instance,
    submit: async (from, to, message) => {
      const res = await run('sendmail', ['-C', instance.etc, '-f', from, to], { input: message, timeoutMs: 15_000 });
      if (res.code !== 0) throw new Error(`sendmail exited ${res.code}: ${res.stdout}${res.stderr}`);
    },
    outcomes: async () => {
      const lines = (await instance.log()).split('\n').filter((l) => / postfix\/smtp\[\d+\]: .*status=/.test(l));
      return {
        sent: lines.filter((l) => l.includes('status=sent')).length,
        deferred: lines.filter((l) => l.includes('status=deferred')).length,
        lines: lines.join('\n'),
      };
    },
  };
}

/** Waits (bounded) until Postfix has delivered at least `count` messages; returns them all. */
export async function waitForDeliveries(backend: PostfixBackend, count: number, timeoutMs = 30_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await backend.delivered();
    if (got.length >= count || Date.now() > deadline) return got;
    await pause(100);
  }
}
