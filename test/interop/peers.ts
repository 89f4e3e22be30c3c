/**
 * Real third-party peers for the interop suite: Postfix's smtp-sink (back end) and smtp-source
 * (load), rbldnsd (DNSBL), swaks and Python's smtplib (clients). Each server is started on port 0;
 * the port it got is read from /proc. HAProxy and a Postfix master cannot bind port 0 and say so:
 * they get a port `freePort` found free a moment before (haproxy.ts, postfix.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const SMTP_SINK = '/usr/sbin/smtp-sink';
export const SMTP_SOURCE = '/usr/sbin/smtp-source';

/** A child process we started, with its output kept for failure messages. */
export interface Running {
  child: ChildProcess;
  output: () => string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop: (graceMs?: number) => Promise<void>;
}

/**
 * Starts a process, collecting stdout and stderr; with `outputFile`, they go to that file instead and
 * `output()` reads it, so this process spends nothing on what the child writes while it runs.
 */
export function launch(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; outputFile?: string } = {}): Running {
  const { outputFile } = options;
  const fd = outputFile === undefined ? undefined : openSync(outputFile, 'w');
  const sink = fd ?? 'pipe';
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', sink, sink] });
  if (fd !== undefined) closeSync(fd);
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once('exit', () => resolve());
  });
  return {
    child,
    output: () => (outputFile === undefined ? output : readFileSync(outputFile, 'latin1')),
    stop: async (graceMs = 3000) => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Runs a command to completion with a bounded time, resolving to its exit code and output. */
export function run(
  command: string,
  args: string[],
  options: { timeoutMs?: number; input?: string; cwd?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish in ${options.timeoutMs ?? 60_000} ms\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    // A command that exits without reading its input (an error) is reported by its exit code and output.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** Sleeps for a short, bounded poll interval. */
export const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The inodes of the sockets a process holds open. */
async function socketInodes(pid: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  for (const fd of await fs.readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const link = await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m) inodes.add(m[1] as string);
  }
  return inodes;
}

/**
 * Local ports a process is bound to: TCP sockets in LISTEN state, or UDP sockets. Read from
 * /proc/net so that servers started on port 0 can be found without parsing their logs.
 */
export async function boundPorts(pid: number, proto: 'tcp' | 'udp'): Promise<number[]> {
  const inodes = await socketInodes(pid);
  const ports = new Set<number>();
  for (const table of [`/proc/net/${proto}`, `/proc/net/${proto}6`]) {
    const text = await fs.readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const [, local, , state] = cols as [string, string, string, string];
      const inode = cols[9] as string;
      if (!inodes.has(inode)) continue;
      if (proto === 'tcp' && state !== '0A') continue;
      ports.add(parseInt(local.split(':')[1] as string, 16));
    }
  }
  return [...ports].sort((a, b) => a - b);
}

/** Waits (bounded) until a process has bound at least `count` ports of a kind. */
export async function waitForPorts(server: Running, proto: 'tcp' | 'udp', count = 1, timeoutMs = 15_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  const pid = server.child.pid;
  if (pid === undefined) throw new Error('process did not start');
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null) throw new Error(`process exited (${server.child.exitCode}):\n${server.output()}`);
    const ports = await boundPorts(pid, proto);
    if (ports.length >= count) return ports;
    await pause(50);
  }
  throw new Error(`process ${pid} bound no ${proto} port within ${timeoutMs} ms:\n${server.output()}`);
}

/** A fresh temporary directory. */
export function tempDir(prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

/** smtp-sink needs `-u` only when it starts as root. */
function privilegeArgs(): string[] {
  return process.getuid?.() === 0 ? ['-u', 'root'] : [];
}

/** One message smtp-sink captured with `-d`. */
export interface SinkMessage {
  clientAddr: string;
  helo: string;
  mailFrom: string;
  rcptTo: string[];
  /** Header and body as the back end received them (after smtp-sink's own headers). */
  content: string;
  file: string;
}

export interface SmtpSink extends Running {
  port: number;
  dumpDir: string;
  messages: () => Promise<SinkMessage[]>;
}

/**
 * Starts Postfix's smtp-sink on 127.0.0.1, port 0, dumping each transaction to its own file unless
 * `dump` is false (the benchmark: disk writes would measure the disk, not the SMTP path).
 */
export async function startSmtpSink(options: { args?: string[]; dump?: boolean } = {}): Promise<SmtpSink> {
  const dumpDir = await tempDir('portcullis-sink-');
  const dumpArgs = options.dump === false ? [] : ['-d', `${dumpDir}/msg.`];
  const server = launch(SMTP_SINK, [...privilegeArgs(), ...(options.args ?? []), ...dumpArgs, '127.0.0.1:0', '256']);
  const [port] = await waitForPorts(server, 'tcp');
  return {
    ...server,
    port: port as number,
    dumpDir,
    messages: () => readSinkDumps(dumpDir),
    stop: async (graceMs?: number) => {
      await server.stop(graceMs);
      await fs.rm(dumpDir, { recursive: true, force: true });
    },
  };
}

/** Parses smtp-sink's dump files (its X- headers, then the message as received). */
export async function readSinkDumps(dir: string): Promise<SinkMessage[]> {
  const out: SinkMessage[] = [];
  for (const name of (await fs.readdir(dir)).sort()) {
    const file = path.join(dir, name);
    // smtp-sink opens a dump at MAIL FROM and deletes it when the transaction is abandoned.
    const text = await fs.readFile(file, 'latin1').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (text === undefined) continue;
    const lines = text.split('\n');
    const msg: SinkMessage = { clientAddr: '', helo: '', mailFrom: '', rcptTo: [], content: '', file };
    let i = 0;
    for (; i < lines.length; i++) {
      const line = lines[i] as string;
      const m = /^(X-[A-Za-z-]+): (.*)$/.exec(line);
      if (!m) break;
      const value = m[2] as string;
      if (m[1] === 'X-Client-Addr') msg.clientAddr = value;
      else if (m[1] === 'X-Helo-Args') msg.helo = value;
      else if (m[1] === 'X-Mail-Args') msg.mailFrom = value.split(' ')[0]?.replace(/^<|>$/g, '') ?? '';
      else if (m[1] === 'X-Rcpt-Args') msg.rcptTo.push(value.split(' ')[0]?.replace(/^<|>$/g, '') ?? '');
    }
    // smtp-sink's own three-line Received: header ends its part of the file.
    if ((lines[i] ?? '').startsWith('Received: ')) i += 3;
    msg.content = lines.slice(i).join('\n');
    out.push(msg);
  }
  return out;
}

/**
 * Waits (bounded) until smtp-sink holds `count` complete dumps and no transaction is still open
 * (an open one is either in progress or about to be deleted as abandoned). Returns the complete ones.
 */
export async function waitForSinkMessages(sink: SmtpSink, count: number, timeoutMs = 15_000): Promise<SinkMessage[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const all = await sink.messages();
    // A dump is complete once smtp-sink has written the blank line that follows the message.
    const complete = all.filter((m) => m.content.endsWith('\n\n'));
    if ((complete.length >= count && complete.length === all.length) || Date.now() > deadline) return complete;
    await pause(50);
  }
}

export interface Rbldnsd extends Running {
  port: number;
}

/** Starts rbldnsd on 127.0.0.1, port 0, serving `ip4set` zones: zone name -> listed entries (`addr[/len] [:code:text]`). */
export async function startRbldnsd(zones: Record<string, string[]>): Promise<Rbldnsd> {
  const dir = await tempDir('portcullis-rbldnsd-');
  // Started as root, rbldnsd drops to its own user, which must still be able to read the zone files.
  await fs.chmod(dir, 0o755);
  const specs: string[] = [];
  for (const [zone, entries] of Object.entries(zones)) {
    const file = `${zone}.txt`;
    await fs.writeFile(path.join(dir, file), `${entries.join('\n')}\n`);
    specs.push(`${zone}:ip4set:${file}`);
  }
  const server = launch('rbldnsd', ['-n', '-f', '-b', '127.0.0.1/0', '-r', dir, ...specs]);
  const [port] = await waitForPorts(server, 'udp');
  return {
    ...server,
    port: port as number,
    stop: async (graceMs?: number) => {
      await server.stop(graceMs);
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

/** A reply as a client saw it; `code` 0 means the connection was closed instead. */
export interface Reply {
  code: number;
  text: string;
}

/** What a client saw at each stage of one session; a stage never reached is absent. */
export interface SessionReplies {
  greeting?: Reply;
  mail?: Reply;
  rcpt: Reply[];
  data?: Reply;
  /** The reply after the final dot. */
  dataEnd?: Reply;
  closedAt?: string;
}

/** One session's inputs for the independent clients. */
export interface SessionInput {
  port: number;
  /** Sent as a PROXY v1/v2 header (the edge trusts 127.0.0.1 as its balancer). */
  proxy?: { version: 1 | 2; source: string };
  /** Connect from this loopback address (e.g. 127.0.0.2) to tell the client apart from a balancer on 127.0.0.1. */
  localAddress?: string;
  helo: string;
  from: string;
  to: string[];
  headerFrom: string;
  subject: string;
}

/**
 * Drives one session with Python's smtplib, one command at a time, and reports the code at each
 * stage. smtplib does not speak PROXY, so the script writes the v1 header itself after connecting.
 */
export async function smtplibSession(input: SessionInput): Promise<SessionReplies> {
  const script = String.raw`
import json, smtplib, socket, sys
a = json.loads(sys.stdin.read())
out = {"rcpt": []}
def rep(r): return {"code": r[0], "text": "%d %s" % (r[0], r[1].decode("latin1") if isinstance(r[1], bytes) else str(r[1]))}
class Proxied(smtplib.SMTP):
    def _get_socket(self, host, port, timeout):
        s = socket.create_connection((host, port), timeout, (a["localAddress"], 0) if a.get("localAddress") else None)
        if a.get("proxy"):
            fam = "TCP6" if ":" in a["proxy"]["source"] else "TCP4"
            dst = "::1" if fam == "TCP6" else "127.0.0.1"
            s.sendall(("PROXY %s %s %s 40000 25\r\n" % (fam, a["proxy"]["source"], dst)).encode())
        return s
stage = "greeting"
try:
    c = Proxied(timeout=30)
    code, msg = c.connect("127.0.0.1", a["port"])
    out["greeting"] = rep((code, msg))
    if code != 220: raise smtplib.SMTPServerDisconnected("refused")
    stage = "helo"; c.ehlo(a["helo"])
    stage = "mail"; r = c.mail(a["from"]); out["mail"] = rep(r)
    ok = 0
    stage = "rcpt"
    for t in a["to"]:
        r = c.rcpt(t); out["rcpt"].append(rep(r))
        if r[0] == 421: raise smtplib.SMTPServerDisconnected("421")
        if r[0] // 100 == 2: ok += 1
    stage = "data"
    r = c.docmd("DATA"); out["data"] = rep(r)
    if r[0] == 354:
        body = "From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\ninterop body\r\n" % (a["headerFrom"], a["to"][0], a["subject"])
        c.send(body.replace("\r\n.", "\r\n..").encode() + b"\r\n.\r\n")
        stage = "dataEnd"
        out["dataEnd"] = rep(c.getreply())
    stage = "quit"
    try: c.quit()
    except smtplib.SMTPServerDisconnected: pass
except (smtplib.SMTPServerDisconnected, ConnectionResetError, BrokenPipeError) as e:
    out["closedAt"] = stage
print(json.dumps(out))
`;
  const res = await run('python3', ['-c', script], { input: JSON.stringify(input), timeoutMs: 60_000 });
  if (res.code !== 0) throw new Error(`smtplib session failed: ${res.stderr}`);
  return JSON.parse(res.stdout) as SessionReplies;
}

/**
 * Drives one session with swaks (which speaks PROXY v1 and v2 itself) and maps each server reply to
 * the command it answered.
 */
export async function swaksSession(input: SessionInput): Promise<SessionReplies> {
  const args = [
    '--server', '127.0.0.1', '--port', String(input.port),
    '--helo', input.helo, '--from', input.from, '--to', input.to.join(','),
    '--header', `From: ${input.headerFrom}`, '--header', `Subject: ${input.subject}`,
    '--body', 'interop body', '--timeout', '30',
  ];
  if (input.localAddress !== undefined) args.push('--local-interface', input.localAddress);
  if (input.proxy) {
    const fam = input.proxy.source.includes(':') ? 'TCP6' : 'TCP4';
    args.push(
      '--proxy-version', String(input.proxy.version), '--proxy-family', input.proxy.version === 2 ? (fam === 'TCP6' ? 'AF_INET6' : 'AF_INET') : fam,
      '--proxy-source', input.proxy.source, '--proxy-source-port', '40000',
      '--proxy-dest', fam === 'TCP6' ? '::1' : '127.0.0.1', '--proxy-dest-port', '25',
    );
  }
  const res = await run('swaks', args, { timeoutMs: 60_000 });
  return parseSwaks(res.stdout + res.stderr);
}

/** Reads swaks's transcript: ` -> ` lines are commands, `<- ` / `<** ` lines are replies. */
export function parseSwaks(transcript: string): SessionReplies {
  const out: SessionReplies = { rcpt: [] };
  let last = 'greeting';
  let inData = false;
  for (const raw of transcript.split('\n')) {
    const sent = /^ -> (.*)$/.exec(raw);
    if (sent) {
      const cmd = (sent[1] as string).toUpperCase();
      if (inData) continue;
      if (cmd.startsWith('MAIL FROM')) last = 'mail';
      else if (cmd.startsWith('RCPT TO')) last = 'rcpt';
      else if (cmd === 'DATA') last = 'data';
      else if (cmd.startsWith('EHLO') || cmd.startsWith('HELO')) last = 'helo';
      else if (cmd === 'QUIT') last = 'quit';
      continue;
    }
    const got = /^(?:<-|<\*\*) +(\d{3})([ -])(.*)$/.exec(raw);
    if (got) {
      if (got[2] === '-') continue;
      const reply = { code: Number(got[1]), text: `${got[1]} ${got[3]}` };
      if (last === 'greeting') out.greeting = reply;
      else if (last === 'mail') out.mail = reply;
      else if (last === 'rcpt') out.rcpt.push(reply);
      else if (last === 'data') {
        out.data = reply;
        inData = reply.code === 354;
        if (inData) last = 'body';
      } else if (last === 'body') {
        out.dataEnd = reply;
        inData = false;
      }
      continue;
    }
    if (/Remote host closed connection unexpectedly/i.test(raw)) {
      out.closedAt ??= last;
    }
  }
  return out;
}

/** Runs smtp-source; resolves when every message has been sent (or throws with its output). */
export async function smtpSource(port: number, args: string[], timeoutMs = 120_000): Promise<void> {
  const res = await run(SMTP_SOURCE, [...args, `127.0.0.1:${port}`], { timeoutMs });
  if (res.code !== 0) throw new Error(`smtp-source exited ${res.code}: ${res.stdout}${res.stderr}`);
}

export interface EdgeProcess extends Running {
  /** The SMTP listener's port. */
  port: number;
  /** The `/metrics` port, when the rule set has `metrics.listen` (then `log.level` must be `info` or finer). */
  metricsPort?: number;
}

/** The port of the `listening` line the edge logs at info level, when it has written one. */
function loggedListenerPort(output: string): number | undefined {
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { msg?: string; port?: number };
    if (entry.msg === 'listening' && typeof entry.port === 'number') return entry.port;
  }
  return undefined;
}

/**
 * Starts `portcullis serve --config FILE` as its own process (from the TypeScript sources through
 * tsx, or from `dist/` with `compiled`) and finds the port its only listener bound. With
 * `withMetrics`, waits for the metrics port too and tells the two apart by the `listening` log line.
 */
export async function startServe(
  configFile: string,
  options: { compiled?: boolean; root?: string; withMetrics?: boolean } = {},
): Promise<EdgeProcess> {
  const root = options.root ?? process.cwd();
  const entry = options.compiled
    ? [path.join(root, 'dist/src/cli/main.js')]
    : ['--import', 'tsx', path.join(root, 'src/cli/main.ts')];
  const server = launch(process.execPath, [...entry, 'serve', '--config', configFile], { cwd: root });
  const ports = await waitForPorts(server, 'tcp', options.withMetrics ? 2 : 1, 30_000);
  if (!options.withMetrics) return { ...server, port: ports[0] as number };
  const deadline = Date.now() + 15_000;
  let port = loggedListenerPort(server.output());
  while (port === undefined && Date.now() < deadline) {
    await pause(50);
    port = loggedListenerPort(server.output());
  }
  if (port === undefined || !ports.includes(port)) throw new Error(`no 'listening' line for the bound ports ${ports.join(', ')}:\n${server.output()}`);
  return { ...server, port, metricsPort: ports.find((p) => p !== port) as number };
}

/** Writes a rule set as YAML (JSON is YAML) and returns its path. */
export async function writeRules(dir: string, rules: Record<string, unknown>, name = 'portcullis.yaml'): Promise<string> {
  const file = path.join(dir, name);
  await fs.writeFile(file, `${JSON.stringify(rules, null, 2)}\n`);
  return file;
}

/**
 * A loopback TCP port that was free a moment ago, for peers that cannot bind port 0 and report it
 * (HAProxy, a Postfix master.cf): bound, read and released, so a rare collision is possible.
 */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}
