/**
 * A private Postfix instance as a back end: its own configuration, queue and data directories under a
 * temporary folder, smtpd on a loopback port only, every recipient of `example.test` delivered by
 * virtual(8) into one Maildir. The master runs in the foreground (`master -d`) as a child of the test,
 * so stopping it (SIGTERM) takes every Postfix process with it. A Postfix master must start as root.
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

/** Starts the instance; `domain` recipients are delivered, XFORWARD is allowed from loopback (the edge sends it). */
export async function startPostfixBackend(domain = 'example.test'): Promise<PostfixBackend> {
  const dir = await tempDir('portcullis-postfix-');
  // Postfix's daemons run as its own user and must reach their queue inside this folder.
  await fs.chmod(dir, 0o755);
  const { uid, gid } = await postfixIds();
  const etc = path.join(dir, 'etc');
  const mail = path.join(dir, 'mail');
  const data = path.join(dir, 'data');
  const maillog = path.join(dir, 'maillog');
  for (const d of [etc, mail, data, path.join(dir, 'queue')]) await fs.mkdir(d);
  await fs.chown(mail, uid, gid);
  await fs.chown(data, uid, gid);
  const port = await freePort();
  await fs.writeFile(
    path.join(etc, 'main.cf'),
    [
      'compatibility_level = 3.6',
      `queue_directory = ${dir}/queue`,
      `data_directory = ${data}`,
      'inet_interfaces = loopback-only',
      'inet_protocols = ipv4',
      'myhostname = backend.interop.test',
      'mydestination =',
      'relay_domains =',
      'mynetworks = 127.0.0.0/8',
      'alias_maps =',
      'alias_database =',
      `virtual_mailbox_domains = ${domain}`,
      `virtual_mailbox_base = ${mail}`,
      'virtual_mailbox_maps = static:inbox/',
      `virtual_uid_maps = static:${uid}`,
      `virtual_gid_maps = static:${gid}`,
      `virtual_minimum_uid = ${Math.min(uid, 100)}`,
      'smtpd_authorized_xforward_hosts = 127.0.0.0/8',
      `maillog_file_prefixes = ${dir}`,
      `maillog_file = ${maillog}`,
      '',
    ].join('\n'),
  );
  // No chroot (the Debian default would need copies of /etc files in the queue directory).
  await fs.writeFile(
    path.join(etc, 'master.cf'),
    [
      `127.0.0.1:${port} inet n - n - - smtpd`,
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
      'virtual unix - n n - - virtual',
      'anvil unix - - n - 1 anvil',
      'scache unix - - n - 1 scache',
      'postlog unix-dgram n - n - 1 postlogd',
      '',
    ].join('\n'),
  );
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
    await waitForPorts(master, 'tcp', 1, 15_000);
  } catch (err) {
    await stop();
    throw err;
  }
  const inbox = path.join(mail, 'inbox', 'new');
  return {
    ...master,
    port,
    stop,
    log,
    delivered: async () => {
      const names = (await fs.readdir(inbox).catch(() => [] as string[])).sort();
      return Promise.all(names.map((n) => fs.readFile(path.join(inbox, n), 'latin1')));
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
